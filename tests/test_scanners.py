"""SIPVicious against the real server: while svmap and svwar sweep it, a real caller is served and
the scanners learn nothing (they are told nothing at all: RFC 3261 lets a UAS drop what it will
not serve, and any answer, even a 403, confirms that a SIP service lives here)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from ivr.app.caller import Action, CallReport, place_call
from ivr.call.engine import Engine, EngineConfig
from tests.server import RunningServer, answers_options, ivr_server

EXTENSIONS = "100-130"  # a small range keeps svwar to a few seconds
SCAN_TIMEOUT = 60


def scans(port: int, compact: bool = False) -> dict[str, list[str]]:
    """svmap (OPTIONS and INVITE) and svwar (INVITE, REGISTER, OPTIONS), with their debug output
    (every datagram they received) so that an answer cannot go unnoticed."""
    c = ["-c"] if compact else []  # compact headers: SIPVicious then sends no User-Agent at all
    p = ["-p", str(port)]
    return {
        "svmap OPTIONS": ["svmap", *c, *p, "-d", "127.0.0.1"],
        "svmap INVITE": ["svmap", *c, *p, "-m", "INVITE", "-d", "127.0.0.1"],
        **{
            f"svwar {method}": ["svwar", *c, *p, "-e", EXTENSIONS, "-m", method, "--debug", "127.0.0.1"]
            for method in ("INVITE", "REGISTER", "OPTIONS")
        },
    }


def start_scans(commands: dict[str, list[str]], cwd: Path) -> dict[str, subprocess.Popen[str]]:
    # Each scanner binds its own source port (from 5060 upwards, skipping busy ones).
    return {
        name: subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, cmd in commands.items()
    }


def finish_scans(running: dict[str, subprocess.Popen[str]]) -> dict[str, str]:
    outputs = {}
    for name, process in running.items():
        try:
            out, _ = process.communicate(timeout=SCAN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
            raise AssertionError(f"{name} did not finish within {SCAN_TIMEOUT} s:\n{out}") from None
        assert process.returncode == 0, f"{name} failed:\n{out}"
        outputs[name] = out
    return outputs


async def real_call(server: RunningServer) -> CallReport:
    caller = Engine(EngineConfig(port=0, user="tester", rtp_low=45000, rtp_high=45998))
    await caller.start()
    host, port = server.address
    try:
        return await place_call(caller, f"sip:ivr@{host}:{port}", [Action(3.0, "hangup")], max_duration=10)
    finally:
        await caller.stop(drain_timeout=0.5)


def test_sipvicious_learns_nothing_while_a_real_caller_is_served(tmp_path: Path) -> None:
    with ivr_server(tmp_path, rtp_base=46000) as server:
        running = start_scans(scans(server.address[1]), tmp_path)
        report = asyncio.run(real_call(server))
        outputs = finish_scans(running)
        assert server.process.poll() is None, "the server died under the scan"
        assert answers_options(server.address), "the server stopped answering"

    assert report.answered, report.lines()
    assert report.heard, f"the caller heard no prompt: {report.lines()}"
    assert report.ended_by == "caller"
    for name, out in outputs.items():
        # --debug / -d print every datagram the scanner received: there must be none.
        assert "SIP/2.0" not in out, f"{name} got an answer:\n{out}"
        assert "found nothing" in out, f"{name} reports a finding:\n{out}"
        assert "| Extension" not in out and "| SIP Device" not in out, f"{name}:\n{out}"


def test_sipvicious_in_compact_mode_learns_nothing(tmp_path: Path) -> None:
    with ivr_server(tmp_path, rtp_base=46000) as server:
        outputs = finish_scans(start_scans(scans(server.address[1], compact=True), tmp_path))
        assert server.process.poll() is None
    for name, out in outputs.items():
        # No User-Agent here: the probes are known by the display name and the From tag.
        assert "SIP/2.0" not in out, f"{name} got an answer:\n{out}"
        assert "found nothing" in out, f"{name} reports a finding:\n{out}"
