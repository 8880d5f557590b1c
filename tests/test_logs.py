"""Logging: JSON lines with the call id bound, whole even when worker processes share stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import os, sys
from ivr.logs import configure_logging, get_logger
configure_logging("info", "json")
children = []
for worker in range(3):
    pid = os.fork()
    if pid == 0:
        log = get_logger(call_id=f"call-{worker}")
        for n in range(2000):
            log.info("tick", worker=worker, n=n, padding="x" * 200)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


def test_lines_from_several_processes_never_run_together(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    with open(out, "wb") as handle:
        subprocess.run([sys.executable, "-c", SCRIPT], stderr=handle, check=True, timeout=60)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6000
    assert {record["call_id"] for record in records} == {"call-0", "call-1", "call-2"}
    assert all(record["level"] == "info" and "timestamp" in record for record in records)


def test_console_format_and_level_filter(tmp_path: Path) -> None:
    script = (
        "from ivr.logs import configure_logging, get_logger\n"
        "configure_logging('warning', 'console')\n"
        "log = get_logger(call_id='abc')\n"
        "log.info('hidden')\n"
        "log.warning('shown', step='menu')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "hidden" not in result.stderr
    assert "shown" in result.stderr and "call_id=abc" in result.stderr and "step=menu" in result.stderr


def test_phone_numbers_can_be_masked_in_the_logs() -> None:
    script = (
        "from ivr.logs import configure_logging, get_logger\n"
        "configure_logging('info', 'json', redact=True)\n"
        "log = get_logger(call_id='4930123456a@h')\n"
        "log.info('call up', caller='+4930123456', text='call 030 1234567 now')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    record = json.loads(result.stderr)
    assert record["caller"] == "+49******56"
    assert "1234567" not in record["text"] and record["text"].startswith("call 03")
    assert record["call_id"] == "4930123456a@h"  # call ids stay as they are: logs must stay greppable
