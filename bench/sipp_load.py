"""SIPp as the capacity bench's load: keypad calls from sipp/bench_keypad.xml, and what SIPp saw.

SIPp places the calls at a fixed rate and reports, per run: calls attempted, succeeded and
failed (its -trace_stat counters) and every SIP message with the time it was sent or read
(-trace_msg). Setup time INVITE->200 comes from that message log, per call, to the microsecond:
SIPp's own response-time figures (-trace_rtt, the repartition table) count in milliseconds of
its scheduler clock, which quantises a 2 ms answer to 0 or 4 ms.

The parsers are plain functions over text, tested without SIPp.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.sipp_runner import SIPP_DIR, SippProcess, parse_stat_csv, start_sipp

SCENARIO = SIPP_DIR / "bench_keypad.xml"
CALL_SECONDS = 8.0  # the IVR hangs up about 8.1 s after the answer, after its read-back

# "----------------------------------------------- 2026-11-22 12:58:32.176421"
_STAMP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")


@dataclass
class SippLoad:
    """One SIPp run's counters and per-call setup times."""

    attempted: int
    succeeded: int
    failed: int
    setup_ms: list[float] = field(default_factory=list)
    timed_out: bool = False
    errors: str = ""


def message_blocks(lines: Iterable[str]) -> Iterable[tuple[float, bool, list[str]]]:
    """(time, sent?, message lines) for each message of a SIPp -trace_msg file."""
    stamp: float | None = None
    sent = False
    body: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        match = _STAMP.match(line)
        if match:
            if stamp is not None:
                yield stamp, sent, _trimmed(body)
            stamp = datetime.datetime.fromisoformat(match.group(1)).timestamp()
            sent, body = False, []
        elif stamp is not None:
            if not body and line.startswith(("UDP message", "TCP message")):
                sent = " sent " in line
                continue
            if line or body:
                body.append(line)
    if stamp is not None:
        yield stamp, sent, _trimmed(body)


def _trimmed(body: list[str]) -> list[str]:
    while body and not body[-1]:
        body.pop()  # SIPp ends each logged message with blank lines
    return body


def _header(lines: list[str], *names: str) -> str:
    """The first header of any of ``names`` (long and compact forms, RFC 3261 §7.3.3)."""
    wanted = {name.lower() for name in names}
    for line in lines[1:]:
        if not line:
            break  # end of the headers
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() in wanted:
            return value.strip()
    return ""


def setup_times_ms(lines: Iterable[str]) -> dict[str, float]:
    """Per Call-ID: first INVITE sent -> first 2xx to that INVITE read, in ms.

    Retransmissions of either message are ignored, so a lost INVITE counts its 500 ms timer.
    """
    invited: dict[str, float] = {}
    setup: dict[str, float] = {}
    for stamp, sent, body in message_blocks(lines):
        if not body:
            continue
        call_id = _header(body, "Call-ID", "i")
        if sent and body[0].startswith("INVITE "):
            invited.setdefault(call_id, stamp)
        elif not sent and body[0].startswith("SIP/2.0 2") and _header(body, "CSeq").endswith("INVITE"):
            if call_id in invited and call_id not in setup:
                setup[call_id] = 1000 * (stamp - invited[call_id])
    return setup


def start_load(
    target: tuple[str, int],
    workdir: Path,
    *,
    calls: int,
    rate: float,
    receiver_port: int,
    host: str = "127.0.0.1",
) -> SippProcess:
    """Start SIPp placing ``calls`` keypad calls at ``rate`` per second; media offers go to
    ``receiver_port`` on ``host``."""
    seconds = calls / rate + CALL_SECONDS + 30
    return start_sipp(
        SCENARIO,
        f"{target[0]}:{target[1]}",
        calls=calls,
        rate=rate,
        limit=calls,
        timeout=seconds,
        host=host,
        service="ivr",
        sets={"recv_port": receiver_port},
        extra_args=["-trace_msg", "-message_file", str(workdir / "messages.log")],
        workdir=workdir,
    )


def finish_load(process: SippProcess) -> SippLoad:
    """Wait for SIPp to end and read its counters and message log."""
    result = process.wait()
    stats = result.stats or parse_stat_csv((process.workdir / "stat.csv").read_text(errors="replace"))
    log = process.workdir / "messages.log"
    with open(log, encoding="utf-8", errors="replace") as lines:
        setup = setup_times_ms(lines)
    return SippLoad(
        attempted=int(stats.get("TotalCallCreated") or stats.get("OutgoingCall(C)") or 0),
        succeeded=result.successful,
        failed=result.failed,
        setup_ms=list(setup.values()),
        timed_out=result.timed_out,
        errors=result.errors[-2000:],
    )
