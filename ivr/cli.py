"""Command line: ``ivr serve``, ``ivr call``, ``ivr demo``.

Options map one to one onto ``EngineConfig`` fields, so what can be configured is visible here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ivr import _compiled
from ivr.call.engine import Engine, EngineConfig
from ivr.logs import configure_logging, get_logger
from ivr.net import event_loop, realtime
from ivr.net.event_loop import LOOP_KINDS
from ivr.ops.stall_watch import StallWatch
from ivr.sip.ratelimit import PUBLIC_SOURCE_RATE, source_rate_for

if TYPE_CHECKING:
    from aiohttp.web import AppRunner

    from ivr.app.flow_application import FlowApplication
    from ivr.handoff.ports import Voice
    from ivr.handoff.service import Handoff
    from ivr.net.workers import WorkerSet
    from ivr.ops.live_view import LiveView

DEFAULT_CACHE = Path("audio") / "cache"


def _port_range(text: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW-HIGH, got {text!r}") from None
    if not (1024 <= low < high <= 65535):
        raise argparse.ArgumentTypeError(f"port range {text!r} must lie within 1024-65535")
    return low, high


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    parser.add_argument("--log-format", default="console", choices=["console", "json"])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="rendered/converted prompts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="A callback-first IVR on plain SIP/RTP.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="answer calls")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (SIP and RTP)")
    serve.add_argument("--port", type=int, default=5060, help="SIP port (UDP, and TCP with --tcp)")
    serve.add_argument("--tcp", action="store_true", help="also accept SIP over TCP")
    serve.add_argument(
        "--advertise", default=None, help="address to put in SDP/Contact (behind NAT, or 0.0.0.0)"
    )
    serve.add_argument("--rtp-ports", type=_port_range, default=(20000, 30000), metavar="LOW-HIGH")
    serve.add_argument("--max-calls", type=int, default=None, help="answer 503 beyond this many calls")
    serve.add_argument(
        "--max-calls-per-source",
        type=int,
        default=None,
        help="answer 503 to an address that already holds this many calls (default: no limit; "
        "a trunk or PBX carries many calls from one address)",
    )
    serve.add_argument(
        "--register",
        default=None,
        metavar="SIP-URI",
        help="register as this AOR at its host, e.g. sip:ivr@pbx.example:5060",
    )
    serve.add_argument("--password", default=None, help="digest password for --register")
    serve.add_argument(
        "--drain-timeout", type=float, default=30.0, help="seconds calls may finish on SIGTERM"
    )
    serve.add_argument(
        "--cache-max-mb", type=float, default=500.0,
        help="disk budget of the prompt cache; prompts written longest ago are removed beyond it",
    )  # fmt: skip
    serve.add_argument(
        "--tts-engine", choices=("espeak-ng", "pyttsx3"), default="espeak-ng",
        help="render prompts with an espeak-ng process each (same audio every time) or in process",
    )  # fmt: skip
    serve.add_argument("--flows", type=Path, default=Path("flows"), help="directory of flow files")
    serve.add_argument("--flow", default="demo", help="flow for calls whose dialled user names no flow")
    serve.add_argument("--agents", type=Path, default=None, help="agents.yaml: name, uri, languages, skills")
    serve.add_argument("--db", type=Path, default=Path("var") / "ivr.db", help="callbacks and call records")
    serve.add_argument(
        "--customer-uri",
        default="sip:{number}@127.0.0.1:5060",
        help="where callbacks are dialled; {number} is the E.164 number",
    )
    serve.add_argument("--ring-timeout", type=float, default=20.0, help="seconds an agent's phone rings")
    serve.add_argument("--wrap-up", type=float, default=60.0, help="seconds of wrap-up after an agent's call")
    serve.add_argument(
        "--retry-spacing",
        type=float,
        default=600.0,
        help="seconds between callback attempts on a customer who did not answer",
    )
    serve.add_argument(
        "--announce-every",
        type=float,
        default=30.0,
        help="seconds between position and wait announcements to waiting callers",
    )
    serve.add_argument(
        "--wait-limit",
        type=float,
        default=600.0,
        help="expected wait (s) above which waiting callers are offered a callback again",
    )
    serve.add_argument(
        "--lease",
        type=float,
        default=120.0,
        help="seconds a callback being dialled stays this process's (renewed while dialling)",
    )
    serve.add_argument("--timezone", default="Europe/Berlin", help="for callback windows and promises")
    serve.add_argument(
        "--source-rate",
        type=float,
        default=None,
        help="SIP messages per second one address may send (0: unlimited). Default: "
        f"{PUBLIC_SOURCE_RATE:g} when --host is not a loopback address, else unlimited; a PBX or "
        "trunk carrying many calls needs a few per call",
    )
    serve.add_argument("--source-burst", type=float, default=200.0, help="burst allowed above --source-rate")
    serve.add_argument("--http-port", type=int, default=0, help="HTTP API and /metrics port (0: off)")
    serve.add_argument("--http-host", default="127.0.0.1", help="address of the HTTP API")
    serve.add_argument("--api-token", default=None, help="bearer token for /api (or IVR_API_TOKEN)")
    serve.add_argument(
        "--inband-dtmf",
        choices=["auto", "always", "never"],
        default="auto",
        help="detect keys as tones in the audio: auto = only where RFC 4733 events were not negotiated",
    )
    serve.add_argument(
        "--answer-delay-header",
        action="store_true",
        help="for tests: honour X-IVR-Answer-Delay (ms to ring before answering, 30 s at most); "
        "never on a public address, where any caller could keep legs ringing",
    )
    serve.add_argument(
        "--redact-numbers",
        action="store_true",
        help="mask phone numbers in the logs (call records keep them)",
    )
    serve.add_argument("--keypad-only", action="store_true", help="no speech recognition")
    serve.add_argument(
        "--no-dither",
        action="store_true",
        help="decode speech without Kaldi's dither: reproducible results (tests)",
    )
    serve.add_argument("--reload-interval", type=float, default=2.0, help="seconds between flow file checks")
    serve.add_argument(
        "--stall-ms",
        type=float,
        default=100.0,
        help="log the code that holds up the event loop (and every call's audio) this long (0: off)",
    )
    serve.add_argument(
        "--realtime",
        type=int,
        default=0,
        metavar="PRIORITY",
        help="run the event loop thread, which paces every call's audio, with real-time priority "
        "(SCHED_RR 1-50; 0: off); needs root or CAP_SYS_NICE, else a warning and normal priority",
    )
    serve.add_argument(
        "--event-loop",
        choices=LOOP_KINDS,
        default="auto",
        help="uvloop (auto: when installed) or the standard asyncio loop",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes behind the one SIP port (0: one per CPU core)",
    )
    _add_common(serve)

    call = commands.add_parser("call", help="place a scripted call and report what happened")
    call.add_argument("target", help="SIP URI to call, e.g. sip:ivr@127.0.0.1:5060")
    call.add_argument(
        "--keys",
        action="append",
        default=[],
        metavar="SEC:DIGITS",
        help="press keys (RFC 4733) SEC seconds after the answer; repeatable",
    )
    call.add_argument("--say", action="append", default=[], metavar="SEC:TEXT", help="speak TEXT (TTS)")
    call.add_argument("--play", action="append", default=[], metavar="SEC:WAV", help="send a WAV file")
    call.add_argument(
        "--hangup", type=float, default=None, metavar="SEC", help="hang up SEC after the answer"
    )
    call.add_argument("--language", default="en")
    call.add_argument("--max-duration", type=float, default=60.0)
    call.add_argument("--record", type=Path, default=None, help="write what was heard to this WAV")
    call.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    call.add_argument("--local-port", type=int, default=0)
    _add_common(call)

    from ivr.app.sip_conversation_tests import cmd_test_over_sip
    from ivr.flow.cli import add_flow_commands

    add_flow_commands(commands, test_over_sip=cmd_test_over_sip)
    from ivr.speech.cli import add_speech_commands

    add_speech_commands(commands)
    from ivr.app.prompt_rendering import add_prompt_commands
    from ivr.handoff.cli import add_callback_commands

    add_prompt_commands(commands)

    add_callback_commands(commands)

    demo = commands.add_parser("demo", help="run the IVR on loopback and call it, offline")
    demo.add_argument("--flows", type=Path, default=Path("flows"), help="directory of flow files")
    _add_common(demo)
    demo.set_defaults(log_level="warning")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(
        getattr(args, "log_level", "warning"),
        getattr(args, "log_format", "console"),
        redact=getattr(args, "redact_numbers", False),
    )
    if hasattr(args, "handler"):
        return int(args.handler(args))
    if args.command == "serve":
        workers = args.workers or os.cpu_count() or 1
        if workers > 1:
            return _serve_workers(args, workers)
        return event_loop.run(_serve(args), args.event_loop)
    if args.command == "call":
        return asyncio.run(_call(args))
    if args.command == "demo":
        from ivr.app.demo import main_demo

        return main_demo(args.cache_dir, args.flows)
    return 2


def _serve_workers(args: argparse.Namespace, count: int) -> int:
    """Fork ``count`` workers sharing the SIP port; pass signals on and wait for them."""
    import shutil
    import tempfile

    import structlog

    from ivr.net.workers import WorkerSet

    if args.port == 0:
        print("ivr serve: --workers needs a fixed --port", file=sys.stderr)
        return 2
    run_dir = Path(tempfile.mkdtemp(prefix="ivr-workers-"))
    children: list[int] = []
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            structlog.contextvars.bind_contextvars(worker=index)
            code = 1
            try:
                code = event_loop.run(_serve(args, WorkerSet(index, count, run_dir)), args.event_loop)
            except SystemExit as stop:
                # os._exit below skips the interpreter's own report: say why this worker ended.
                if isinstance(stop.code, str):
                    print(stop.code, file=sys.stderr)
                code = stop.code if isinstance(stop.code, int) else 1
            except BaseException:
                get_logger().exception("worker failed")
            finally:
                os._exit(code)
        children.append(pid)

    def forward(signum: int, frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    worst = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        worst = max(worst, os.waitstatus_to_exitcode(status))
    shutil.rmtree(run_dir, ignore_errors=True)
    return worst


def _log_media_build() -> None:
    log = get_logger()
    if _compiled.running_compiled():
        log.info("media plane compiled")
    elif _compiled.built():
        # Edited since the build, or the reference asked for: correct, but slower than it should be.
        log.warning("media plane runs from its Python source", reason=_compiled.sources_first_reason)
    else:
        log.info("media plane runs as pure Python (not compiled at install)")


async def _serve(args: argparse.Namespace, workers: WorkerSet | None = None) -> int:
    from ivr.app.flow_application import FlowApplication
    from ivr.app.handoff_adapters import EngineDialer, flow_handlers
    from ivr.flow.reload import FlowRegistry
    from ivr.speech.models import ModelRegistry
    from ivr.speech.prompt_library import PromptLibrary

    log = get_logger()
    registry = FlowRegistry(args.flows)
    report = registry.reload()
    if registry.get(args.flow) is None:
        for errors in report.rejected.values():
            for error in errors:
                print(error, file=sys.stderr)
        print(f"ivr serve: no valid flow named {args.flow!r} in {args.flows}", file=sys.stderr)
        return 1
    low, high = args.rtp_ports
    prompts = PromptLibrary(
        args.cache_dir, max_disk_bytes=int(args.cache_max_mb * 1024 * 1024),
        in_process_tts=args.tts_engine == "pyttsx3",
    )  # fmt: skip
    config = EngineConfig(
        host=args.host, port=args.port, tcp=args.tcp, advertised_host=args.advertise,
        rtp_low=low, rtp_high=high, max_calls=args.max_calls, workers=workers,
        max_calls_per_source=args.max_calls_per_source,
        source_rate=source_rate_for(args.host, args.source_rate), source_burst=args.source_burst,
        inband_dtmf=args.inband_dtmf, answer_delay_header=args.answer_delay_header,
    )  # fmt: skip
    models = ModelRegistry(zero_dither=args.no_dither)
    # Workers of one start share a run id: the agent board keeps their rows, drops older runs'.
    handoff = _handoff(args, prompts, run=workers.run_dir.name if workers is not None else "")
    if handoff is None:
        return 1
    await handoff.board.join()
    transfer, callback = flow_handlers(handoff)
    application = FlowApplication(
        registry, args.flow, prompts, speech=not args.keypad_only, models=models,
        transfer=transfer, callback=callback, records=handoff.record_call,
        waits=lambda call_id: handoff.waits.pop(call_id, None),
    )  # fmt: skip
    await application.prepare()
    engine = Engine(config, application)
    handoff.dialer = EngineDialer(engine)
    # The API first: once SIP answers, everything about it can be asked.
    # One API per server: worker 0 serves it (the others could not bind the port anyway); agent
    # events it applies reach the other workers through the agent board.
    serves_api = args.http_port and (workers is None or workers.index == 0)
    watch = StallWatch(args.stall_ms / 1000.0) if args.stall_ms > 0 else None
    live = _live_view(application, handoff, workers)
    http = await _start_http(args, engine, handoff, live, watch) if serves_api else None
    await engine.start()
    # What start-up made (modules, flows, prompts, models) lives as long as the server. Frozen, it
    # is out of the collector's sight: full collections, which stop every call while they run,
    # then scan only what calls create (measured in BENCHMARKS.md, keypad capacity with SIPp).
    gc.collect()
    gc.freeze()
    if watch is not None:
        watch.start()
    if args.register and (workers is None or workers.index == 0):
        await _register(engine, args.register, args.password or "", log)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log.info("event loop", kind=event_loop.loop_name(loop))
    _log_media_build()
    if args.realtime:
        refused = realtime.make_loop_thread_realtime(args.realtime)
        if refused is None:
            log.info("event loop thread at real-time priority", policy="SCHED_RR", priority=args.realtime)
        else:
            log.warning("real-time priority not set; running at normal priority", reason=refused)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    # Edited flows are picked up by polling and at once on SIGHUP; calls keep their version.
    loop.add_signal_handler(signal.SIGHUP, registry.on_sighup)
    watcher = asyncio.create_task(registry.watch(args.reload_interval, stop))
    dialer = asyncio.create_task(handoff.run_dialer(stop))
    # Every worker tells the others about its calls and callers on hold, until the last has ended.
    calls_over = asyncio.Event()
    publisher = asyncio.create_task(live.publish(calls_over)) if workers and workers.count > 1 else None
    await stop.wait()
    log.info("shutting down", active_calls=engine.active_calls)
    await engine.stop(drain_timeout=args.drain_timeout)
    calls_over.set()
    await watcher
    await dialer
    if publisher is not None:
        await publisher
    if watch is not None:
        watch.stop()
    if http is not None:
        await http.cleanup()
    handoff.store.close()
    return 0


def _live_view(application: FlowApplication, handoff: Handoff, workers: WorkerSet | None) -> LiveView:
    """The calls in progress the API shows: with several workers, everyone's, through the store."""
    from ivr.ops.live_view import LiveView

    if workers is None or workers.count < 2:
        return LiveView(application)
    live = LiveView(
        application, handoff.store, handoff.store_thread,
        owner=handoff.config.owner, run=handoff.config.run, queue=handoff.queue,
    )  # fmt: skip
    handoff.remote_waiting = live.others_waiting
    return live


async def _start_http(
    args: argparse.Namespace, engine: Engine, handoff: Handoff, live: LiveView, watch: StallWatch | None
) -> AppRunner:
    """The HTTP API and /metrics; the token comes from --api-token or IVR_API_TOKEN."""
    from ivr.ops.api import Ops, start_http
    from ivr.ops.metrics import Metrics

    token = args.api_token or os.environ.get("IVR_API_TOKEN", "")
    if len(token) < 16:
        raise SystemExit("ivr serve: --http-port needs an API token of at least 16 characters (--api-token)")
    metrics = Metrics()
    metrics.watch_gc()
    flows = live.flows
    flows.on_finished = metrics.flow_finished
    flows.on_speech = metrics.speech_heard
    handoff.on_connected = metrics.time_to_human.observe
    handoff.on_waited = metrics.waited
    if watch is not None:
        watch.on_over = metrics.loop_stall.observe
    ops = Ops(engine, handoff, flows, metrics, token, live)
    runner = await start_http(ops, args.http_host, args.http_port)
    get_logger().info("http api listening", host=args.http_host, port=args.http_port)
    return runner


def _handoff(args: argparse.Namespace, prompts: Voice, run: str = "") -> Handoff | None:
    """Agents, the callback store and the dialer; None (after a clear message) on bad config."""
    from ivr.handoff.agents import AgentConfigError, AgentPool, PoolConfig, load_agents
    from ivr.handoff.service import Handoff, HandoffConfig
    from ivr.store.base import StoreError
    from ivr.store.sqlite import SqliteStore

    try:
        pool = load_agents(args.agents, time.time()) if args.agents else AgentPool()
        pool.config = PoolConfig(wrap_up_timeout=args.wrap_up)
    except AgentConfigError as error:
        print(f"ivr serve: {error}", file=sys.stderr)
        return None
    try:
        args.db.parent.mkdir(parents=True, exist_ok=True)
        store = SqliteStore(args.db)
    except (OSError, StoreError) as error:
        print(f"ivr serve: cannot open the callback store {args.db}: {error}", file=sys.stderr)
        return None
    config = HandoffConfig(
        customer_uri=args.customer_uri, ring_timeout=args.ring_timeout, timezone=args.timezone,
        retry_spacing=args.retry_spacing, lease=args.lease, announce_every=args.announce_every,
        wait_limit=args.wait_limit, run=run,
    )  # fmt: skip
    return Handoff(pool, store, prompts, config)


async def _register(engine: Engine, aor: str, password: str, log: object) -> None:
    from ivr.sip.uri import parse_uri

    uri = parse_uri(aor)
    registrar = (uri.host, uri.port or 5060)
    result = await engine.register(registrar, uri.user or engine.config.user, uri.host, password)
    if not result.registered:
        get_logger().error("registration failed", aor=aor, status=result.status)


async def _call(args: argparse.Namespace) -> int:
    from ivr.app.caller import Action, parse_timed, place_call, write_wav
    from ivr.speech.prompt_library import PromptLibrary

    try:
        actions = [parse_timed("keys", k) for k in args.keys]
        actions += [parse_timed("say", s) for s in args.say]
        actions += [parse_timed("play", p) for p in args.play]
    except ValueError as exc:
        print(f"ivr call: {exc}", file=sys.stderr)
        return 2
    if args.hangup is not None:
        actions.append(Action(args.hangup, "hangup"))
    headers = []
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep:
            print(f"ivr call: header must be NAME:VALUE, got {item!r}", file=sys.stderr)
            return 2
        headers.append((name.strip(), value.strip()))
    engine = Engine(
        EngineConfig(host="127.0.0.1", port=args.local_port, user="caller", rtp_low=41000, rtp_high=41998)
    )
    await engine.start()
    try:
        report = await place_call(
            engine, args.target, actions, PromptLibrary(args.cache_dir),
            language=args.language, max_duration=args.max_duration, headers=headers,
        )  # fmt: skip
    finally:
        await engine.stop(drain_timeout=1.0)
    for line in report.lines():
        print(line)
    if report.answered:
        print(
            f"answered in {1000 * (report.setup_seconds or 0):.1f} ms; "
            f"lasted {report.duration:.2f}s; ended by {report.ended_by}"
        )
    if args.record is not None and report.recording is not None:
        write_wav(args.record, report.recording)
        print(f"recording written to {args.record}")
    return 0 if report.answered else 1


if __name__ == "__main__":
    sys.exit(main())
