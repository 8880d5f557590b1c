"""The HTTP API and /metrics against a running server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ivr.call.engine import Engine, EngineConfig
from ivr.handoff.numbers import approve, policy_from_flow
from ivr.store.base import Booking
from ivr.store.sqlite import SqliteStore
from tests.server import REPO, ivr_server
from tests.sipp_runner import SIPP_DIR, run_sipp, start_sipp

TOKEN = "test-token-0123456789"


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(port: int, method: str, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read().decode(), error.code
        error.close()
    try:
        return status, json.loads(body)
    except json.JSONDecodeError:
        return status, body


async def silent_call(uri: str) -> None:
    engine = Engine(EngineConfig(port=0, user="silent", rtp_low=47000, rtp_high=47998))
    await engine.start()
    try:
        call = await engine.dial(uri)
        assert await call.wait_ended(30), "the IVR hangs up after no input"
    finally:
        await engine.stop(0.5)


def test_api_auth_agents_calls_callbacks_and_metrics(tmp_path: Path) -> None:
    db = tmp_path / "ivr.db"
    store = SqliteStore(db)
    number = approve("+4930555000", policy_from_flow(())).e164
    now = time.time()
    # Not before an hour from now: the dialer leaves it (and the agent) alone during the test.
    store.book(Booking(number, "en", now, now + 3600, now + 7200, max_attempts=3), now)
    store.close()
    agents = tmp_path / "agents.yaml"
    agents.write_text(
        "agents:\n"
        "  - {id: alice, name: Alice, uri: 'sip:alice@127.0.0.1:9', languages: [en], skills: [support]}\n"
    )
    port = free_tcp_port()
    args = ("--http-port", str(port), "--api-token", TOKEN, "--agents", str(agents), "--db", str(db))
    with ivr_server(tmp_path, *args, rtp_base=30000) as server:
        target = f"127.0.0.1:{server.address[1]}"
        # Authentication.
        assert http(port, "GET", "/api/agents", token=None)[0] == 401
        assert http(port, "GET", "/api/agents", token="wrong-token-0000000")[0] == 401
        status, listed = http(port, "GET", "/api/agents")
        assert status == 200 and listed[0]["id"] == "alice" and listed[0]["state"] == "available"
        # Agent state from the API; impossible moves are refused, not applied.
        assert http(port, "POST", "/api/agents/alice/logout")[1]["state"] == "offline"
        assert http(port, "POST", "/api/agents/alice/wrap-up-done")[0] == 409
        assert http(port, "POST", "/api/agents/alice/login")[1]["state"] == "available"
        assert http(port, "POST", "/api/agents/nobody/login")[0] == 404
        # A live call appears with its step and context, and disappears when it ends.
        with start_sipp(SIPP_DIR / "uac_caller_hangs_up.xml", target, sets={"hangup_ms": 3000}) as caller:
            time.sleep(1.0)
            status, live = http(port, "GET", "/api/calls")
            assert status == 200 and len(live) == 1 and live[0]["flow"] == "demo" and live[0]["step"]
            status, context = http(port, "GET", f"/api/calls/{live[0]['call_id']}/context")
            assert status == 200 and context["flow"] == "demo"
            assert caller.wait(timeout=20).ok
        time.sleep(0.3)
        assert http(port, "GET", "/api/calls")[1] == []
        # Callbacks: listed with their promise, cancelled once, refused the second time.
        status, listed = http(port, "GET", "/api/callbacks")
        assert status == 200 and listed[0]["number"] == number
        cb = listed[0]["id"]
        later = time.time() + 7200
        assert http(port, "POST", f"/api/callbacks/{cb}/reschedule?start={later}&by={later - 60}")[0] == 409
        assert http(port, "POST", f"/api/callbacks/{cb}/reschedule")[0] == 400
        assert http(port, "POST", f"/api/callbacks/{cb}/reschedule?start={later}&by={later + 1800}")[0] == 200
        assert http(port, "GET", "/api/callbacks")[1][0]["promised_by"] == later + 1800
        assert http(port, "POST", f"/api/callbacks/{listed[0]['id']}/cancel")[1]["state"] == "cancelled"
        assert http(port, "POST", f"/api/callbacks/{listed[0]['id']}/cancel")[0] == 409
        # A few calls that finish the demo flow: the metrics agree with the call records.
        for digits in ("12", "34"):
            result = run_sipp(
                SIPP_DIR / "uac_ivr_hangs_up.xml", target, sets={"digits": f"{digits}#", "wait_ms": 800}
            )
            assert result.ok, result.describe()
        # And one caller who stays silent: the digits step times out (no-input) and the IVR ends it.
        asyncio.run(silent_call(f"sip:demo@{target}"))
        status, text = http(port, "GET", "/metrics", token=None)
        assert http(port, "GET", "/openapi.json")[1]["openapi"].startswith("3.")
    assert status == 200
    lines = {
        line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line and line[0] != "#"
    }
    cdr = subprocess.run(
        [sys.executable, "-m", "ivr", "cdr", "--db", str(db), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    records = json.loads(cdr.stdout)
    by_outcome: dict[str, int] = {}
    for record in records:
        by_outcome[record["outcome"]] = by_outcome.get(record["outcome"], 0) + 1
    for outcome, count in by_outcome.items():
        assert lines[f'ivr_calls_total{{flow="demo",outcome="{outcome}"}}'] == count
    assert by_outcome.get("resolved") == 3
    assert lines['ivr_no_match_total{kind="noinput",step="demo/digits"}'] == 1
    assert lines["ivr_self_service_containment_ratio"] == by_outcome["resolved"] / len(records)
    assert lines['ivr_callbacks{state="cancelled"}'] == 1
    assert lines['ivr_agents{state="available"}'] == 1
    # The process and its garbage collector: the full collection at start-up (before the start-up
    # objects are frozen) was timed, and memory is that of a real process.
    assert lines['ivr_gc_pause_seconds_count{generation="2"}'] >= 1
    assert lines['ivr_gc_pause_seconds_sum{generation="2"}'] > 0
    assert lines['python_gc_collections_total{generation="0"}'] >= 1
    assert lines["process_resident_memory_bytes"] > 10e6 and lines["process_open_fds"] > 3
    assert "ivr_event_loop_stall_seconds_count" in lines  # the stall watch reports here (--stall-ms)
