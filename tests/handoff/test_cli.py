"""Operator commands against a store file."""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from pathlib import Path

import pytest

from ivr.handoff.cli import add_callback_commands
from ivr.store.base import Booking, CallbackState, CallRecord
from ivr.store.sqlite import SqliteStore


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivr")
    add_callback_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "ivr.db"
    store = SqliteStore(path)
    now = time.time()
    store.book(
        Booking("+4930111111", "de", now - 60, now - 60, now + 1200, 3, promise_text="within 25 minutes"), now
    )
    store.book(Booking("+4930222222", "en", now - 30, now - 30, now + 1200, 3), now)
    store.record_call(
        CallRecord(
            "call-1",
            now - 100,
            now - 40,
            "sip:+4930111111@x",
            "sip:support@ivr",
            "support",
            "2",
            ["greeting", "to_agent"],
            [{"keys": "0"}],
            "callback:1",
            "callback_booked",
            600.0,
            None,
        )
    )
    store.close()
    return str(path)


def test_list_show_cancel_retry(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["callbacks", "--db", db, "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["state"], r["number"]) for r in rows] == [
        (1, "pending", "+4930111111"),
        (2, "pending", "+4930222222"),
    ]
    assert run(["callbacks", "--db", db, "cancel", "2"]) == 0
    assert "callback 2: cancelled" in capsys.readouterr().out
    assert run(["callbacks", "--db", db, "cancel", "2"]) == 1  # not twice
    assert "cannot cancel while cancelled" in capsys.readouterr().err
    assert run(["callbacks", "--db", db, "show", "2"]) == 0
    out = capsys.readouterr().out
    assert "pending -> cancelled  cancel" in out and "+4930222222" in out
    assert run(["callbacks", "--db", db, "list", "--state", "pending"]) == 0
    table = capsys.readouterr().out
    assert "+4930111111" in table and "+4930222222" not in table
    assert run(["callbacks", "--db", db, "retry", "1"]) == 0
    check = SqliteStore(db)
    assert check.get(1).state is CallbackState.PENDING  # type: ignore[union-attr]
    check.close()
    assert run(["callbacks", "--db", db, "show", "99"]) == 1


def test_cdr_export_csv_and_json(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["cdr", "--db", db, "--format", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["path"] == ["greeting", "to_agent"] and record["announced_wait"] == 600.0
    assert run(["cdr", "--db", db, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["call_id"] == "call-1" and json.loads(rows[0]["inputs"]) == [{"keys": "0"}]
    assert run(["cdr", "--db", db, "--from", "2001-01-01", "--to", "2001-01-02"]) == 0
    assert capsys.readouterr().out.strip() == ",".join(
        [
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
        ]
    )
