"""The operator's flow commands: ``ivr validate``, ``ivr chat``, ``ivr test``, ``ivr graph``.

``add_flow_commands(subparsers)`` adds them to the main ``ivr`` parser; each sets ``handler`` so
the main program runs ``args.handler(args)`` and exits with its return value.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from ivr.flow.validate import check_file


def add_flow_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    test_over_sip: Callable[[argparse.Namespace], int] | None = None,
) -> None:
    """``test_over_sip`` runs ``ivr test --sip``: real calls, which the application layer places."""
    validate = subparsers.add_parser("validate", help="check flows; every mistake as file:line:column")
    validate.add_argument("flows", nargs="+", type=Path, metavar="FLOW")
    validate.set_defaults(handler=cmd_validate)

    chat = subparsers.add_parser("chat", help="talk to a flow in the terminal (text = speech, #5 = keys)")
    chat.add_argument("flow", type=Path, metavar="FLOW")
    chat.add_argument("--agents", choices=["available", "none"], default="none", help="result of transfers")
    chat.add_argument("--callback", choices=["accept", "decline"], default="accept", help="callback answer")
    chat.set_defaults(handler=cmd_chat)

    test = subparsers.add_parser("test", help="run the conversation tests beside a flow (FLOW.tests.yaml)")
    test.add_argument("flows", nargs="+", type=Path, metavar="FLOW")
    test.add_argument(
        "--sip", default=None, metavar="SIP-URI", help="run the cases as real calls against this server"
    )
    test.add_argument(
        "--api", default=None, metavar="URL", help="the server's HTTP API, e.g. http://127.0.0.1:8080"
    )
    test.add_argument("--token", default=None, help="the server's API token (or IVR_API_TOKEN)")
    test.add_argument("--cache-dir", type=Path, default=Path("audio") / "cache", help="rendered speech")
    test.set_defaults(handler=cmd_test, test_over_sip=test_over_sip)

    graph = subparsers.add_parser("graph", help="draw a flow: Mermaid, Graphviz DOT, SVG or PNG")
    graph.add_argument("flow", type=Path, metavar="FLOW")
    graph.add_argument("--format", choices=["mermaid", "dot", "svg", "png"], default="mermaid")
    graph.add_argument("-o", "--output", type=Path, default=None, help="write here instead of stdout")
    graph.set_defaults(handler=cmd_graph)


def cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.flows:
        if path.name.endswith(".tests.yaml"):
            # A shell glob such as flows/*.yaml also picks the conversation tests beside a flow.
            print(f"{path}: skipped (conversation tests: run 'ivr test' on the flow)")
            continue
        flow, errors = check_file(path)
        for error in errors:
            print(error)
        if flow is None:
            failed += 1
        else:
            steps = sum(len(s.steps) for s in flow.scopes())
            print(f"{path}: ok ({steps} steps)")
    return 1 if failed else 0


def _load_or_report(path: Path) -> object:
    flow, errors = check_file(path)
    for error in errors:
        print(error, file=sys.stderr)
    return flow


def cmd_chat(args: argparse.Namespace) -> int:
    from ivr.flow.chat import chat
    from ivr.flow.model import Flow

    flow = _load_or_report(args.flow)
    if not isinstance(flow, Flow):
        return 1
    result = asyncio.run(chat(flow, agents=args.agents, callback=args.callback))
    return 0 if result.outcome != "error" else 1


def cmd_test(args: argparse.Namespace) -> int:
    from ivr.flow.conversation_tests import main_test

    if args.sip:
        if args.test_over_sip is None:
            print("ivr test: --sip is not available here", file=sys.stderr)
            return 2
        return int(args.test_over_sip(args))
    return main_test(args.flows)


def cmd_graph(args: argparse.Namespace) -> int:
    from ivr.flow.graph import render
    from ivr.flow.model import Flow

    flow = _load_or_report(args.flow)
    if not isinstance(flow, Flow):
        return 1
    try:
        out = render(flow, args.format)
    except RuntimeError as exc:
        print(f"ivr graph: {exc}", file=sys.stderr)
        return 1
    if args.output is not None:
        args.output.write_bytes(out if isinstance(out, bytes) else out.encode())
    elif isinstance(out, bytes):
        sys.stdout.buffer.write(out)
    else:
        sys.stdout.write(out)
    return 0
