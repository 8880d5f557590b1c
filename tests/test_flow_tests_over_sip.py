"""``ivr test --sip``: the operators' conversation tests as real calls to a running server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.server import REPO, ivr_server
from tests.test_http_api import TOKEN, free_tcp_port


def run_tests(flow: str, server_port: int, http_port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivr", "test", flow, "--sip", f"127.0.0.1:{server_port}",
         "--api", f"http://127.0.0.1:{http_port}", "--token", TOKEN],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_the_same_cases_pass_as_real_calls(tmp_path: Path) -> None:
    http_port = free_tcp_port()
    flows = str(REPO / "tests" / "flows" / "handoff")
    args = (
        "--flows",
        flows,
        "--flow",
        "support",
        "--keypad-only",
        "--http-port",
        str(http_port),
        "--api-token",
        TOKEN,
    )
    with ivr_server(tmp_path, *args, rtp_base=30000) as server:
        result = run_tests("tests/flows/handoff/support.yaml", server.address[1], http_port)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS  opening hours, then nothing else" in result.stdout
    assert "PASS  outage at a postcode with a known outage" in result.stdout
    assert "3 passed, 0 failed" in result.stdout


def test_a_case_that_does_not_match_the_server_fails_with_the_difference(tmp_path: Path) -> None:
    http_port = free_tcp_port()
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "demo.yaml").write_text((REPO / "flows" / "demo.yaml").read_text())
    (flows / "demo.tests.yaml").write_text(
        "flow: demo.yaml\ncases:\n  - name: wrong expectation\n    inputs: ['#12#']\n"
        "    expect: {path: [greeting, digits, nothing], outcome: resolved}\n"
    )
    args = (
        "--flows",
        str(flows),
        "--flow",
        "demo",
        "--keypad-only",
        "--http-port",
        str(http_port),
        "--api-token",
        TOKEN,
    )
    with ivr_server(tmp_path, *args, rtp_base=30000) as server:
        result = run_tests(str(flows / "demo.yaml"), server.address[1], http_port)
    assert result.returncode == 1
    assert "FAIL  wrong expectation" in result.stdout and "read_back" in result.stdout
