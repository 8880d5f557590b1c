"""Operator commands: ``ivr callbacks list|show|cancel|retry`` and ``ivr cdr``.

They work on the store file directly (SQLite in WAL mode lets them read and write while the server
runs); a cancel or retry is a compare-and-set transition like any other, so it cannot interfere with
a callback the server is dialing at that moment: it fails and says why.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import sys
from typing import Any

from ivr.handoff.ports import SystemClock
from ivr.store.base import CallbackRecord, CallbackState, StaleState, StoreError
from ivr.store.sqlite import SqliteStore

DEFAULT_DB = "var/ivr.db"


def add_callback_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cb = subparsers.add_parser("callbacks", help="list, show, cancel or retry callbacks")
    cb.add_argument("--db", default=DEFAULT_DB, help=f"store file (default {DEFAULT_DB})")
    actions = cb.add_subparsers(dest="callbacks_action", required=True)
    listing = actions.add_parser("list", help="callbacks with state, number and promise")
    listing.add_argument(
        "--state",
        action="append",
        choices=[s.value for s in CallbackState],
        help="only these states (repeatable); default: all",
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=cmd_list)
    for name, handler, text in (
        ("show", cmd_show, "one callback with its full history"),
        ("cancel", cmd_cancel, "cancel a pending callback"),
        ("retry", cmd_retry, "dial a failed, pending or to-verify callback again now"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("id", type=int)
        sub.set_defaults(handler=handler)

    cdr = subparsers.add_parser("cdr", help="export call detail records for a time range")
    cdr.add_argument("--db", default=DEFAULT_DB, help=f"store file (default {DEFAULT_DB})")
    cdr.add_argument(
        "--from",
        dest="start",
        type=_moment,
        default=None,
        help="start (ISO date/time, local if no zone; default: 24 hours ago)",
    )
    cdr.add_argument("--to", dest="end", type=_moment, default=None, help="end, exclusive (default: now)")
    cdr.add_argument("--format", choices=("csv", "json"), default="csv")
    cdr.set_defaults(handler=cmd_cdr)


def _moment(text: str) -> float:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as operators type it
    return moment.timestamp()


def _iso(t: float | None) -> str:
    return "" if t is None else dt.datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def _row(r: CallbackRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "state": r.state.value,
        "number": r.number,
        "language": r.language,
        "skill": r.skill,
        "attempts": f"{r.attempts}/{r.max_attempts}",
        "entered": _iso(r.queue_entered_at),
        "promised_by": _iso(r.promised_by),
        "promise": r.promise_text,
        "next_attempt": _iso(r.next_attempt_at),
        "last_outcome": r.last_outcome,
        "agent": r.agent,
        "connected_at": _iso(r.connected_at),
    }


def _open(args: argparse.Namespace) -> SqliteStore:
    return SqliteStore(args.db)


def cmd_list(args: argparse.Namespace) -> int:
    try:
        with _open(args) as store:
            states = frozenset(CallbackState(s) for s in args.state) if args.state else None
            records = store.list_callbacks(states)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        for r in records:
            print(json.dumps(_row(r), ensure_ascii=False))
        return 0
    print(f"{'ID':>5}  {'STATE':<16} {'NUMBER':<16} {'ATTEMPTS':<8} {'PROMISED BY':<25} LAST")
    for r in records:
        print(
            f"{r.id:>5}  {r.state.value:<16} {r.number:<16} {r.attempts}/{r.max_attempts:<6} "
            f"{_iso(r.promised_by):<25} {r.last_outcome or ''}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    try:
        with _open(args) as store:
            record = store.get(args.id)
            events = store.events(args.id)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if record is None:
        print(f"error: no callback {args.id}", file=sys.stderr)
        return 1
    for key, value in _row(record).items():
        print(f"{key:>13}: {'' if value is None else value}")
    print(f"{'context':>13}: {json.dumps(dict(record.context), ensure_ascii=False)}")
    print("history:")
    for e in events:
        old = e.old.value if e.old else "-"
        print(f"  {_iso(e.at)}  {old} -> {e.new.value}  {e.event}  {e.detail}")
    return 0


def _change(args: argparse.Namespace, action: str) -> int:
    try:
        with _open(args) as store:
            now = SystemClock().now()
            record = store.cancel(args.id, now) if action == "cancel" else store.operator_retry(args.id, now)
    except StaleState as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"callback {record.id}: {record.state.value}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    return _change(args, "cancel")


def cmd_retry(args: argparse.Namespace) -> int:
    return _change(args, "retry")


CDR_FIELDS = (
    "call_id",
    "started_at",
    "ended_at",
    "caller",
    "called",
    "flow",
    "flow_version",
    "path",
    "inputs",
    "handoff",
    "outcome",
    "announced_wait",
    "actual_wait",
)


def cmd_cdr(args: argparse.Namespace) -> int:
    end = args.end if args.end is not None else SystemClock().now()
    start = args.start if args.start is not None else end - 86400.0
    try:
        with _open(args) as store:
            records = store.calls(start, end)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rows = []
    for r in records:
        rows.append(
            {
                "call_id": r.call_id,
                "started_at": _iso(r.started_at),
                "ended_at": _iso(r.ended_at),
                "caller": r.caller,
                "called": r.called,
                "flow": r.flow,
                "flow_version": r.flow_version,
                "path": list(r.path),
                "inputs": [dict(i) for i in r.inputs],
                "handoff": r.handoff,
                "outcome": r.outcome,
                "announced_wait": r.announced_wait,
                "actual_wait": r.actual_wait,
            }
        )
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CDR_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v for k, v in row.items()}
        )
    sys.stdout.write(out.getvalue())
    return 0
