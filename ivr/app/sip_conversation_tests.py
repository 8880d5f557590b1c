"""``ivr test FLOW --sip URI``: the operators' conversation tests as real SIP calls.

Each case becomes a call to a running server. Whenever it is the caller's turn (the server's API
says the flow is listening), the next input goes in: keys as RFC 4733, text as speech rendered by
TTS, "" as silence, "!hangup" as hanging up. When the call is over, its detail record (path, what
the IVR said, outcome) is fetched from the API and checked exactly as the simulator checks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.call.engine import DialFailed, Engine, EngineConfig
from ivr.flow.conversation_tests import Case, CaseResult, check, load_cases, report, tests_file_for
from ivr.flow.validate import check_file
from ivr.media.prompts import tone
from ivr.sip.errors import SipParseError
from ivr.sip.uri import parse_uri
from ivr.speech.prompt_library import PromptLibrary

TURN_TIMEOUT = 60.0  # longest prompt plus no-input time a case may wait for the caller's turn


@dataclass
class _Path:
    steps: list[str]
    said: list[str]


@dataclass
class _Result:
    """The parts of a call's outcome that ``check`` reads, rebuilt from the call record."""

    outcome: str
    reason: str
    path: _Path
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Api:
    base: str
    token: str

    def get(self, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(self.base.rstrip("/") + path)
        request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            error.close()
            return error.code, json.loads(body or b"null")

    async def aget(self, path: str) -> tuple[int, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, self.get, path)


async def run_case_sip(case: Case, target: str, api: Api, cache_dir: Path) -> CaseResult:
    engine = Engine(EngineConfig(host="127.0.0.1", port=0, user=case.caller, rtp_low=47000, rtp_high=47998))
    await engine.start()
    transcript: list[str] = []
    try:
        try:
            call = await engine.dial(target)
        except DialFailed as failure:
            return CaseResult(case, None, [f"call failed: {failure}"], transcript)
        listens = 0
        for text in case.inputs:
            listens = await _wait_for_turn(api, call.call_id, listens)
            if listens < 0:
                break  # the call ended before the script did
            transcript.append(f"caller: {text or '(silence)'}")
            if text.startswith("#"):
                call.send_dtmf(text[1:])
            elif text == "!hangup":
                call.hangup("caller hung up")
                break
            elif text == "!nomatch":
                call.media.player.play(tone(180, 1500, 0.3), interruptible=False)
            elif text:
                samples = await PromptLibrary(cache_dir).text(text, "en")
                call.media.player.play(samples, interruptible=False)
        if call.active:
            await call.wait_ended(TURN_TIMEOUT)
        if call.active:
            call.hangup("test over")
        record = await _record(api, call.call_id)
    finally:
        await engine.stop(drain_timeout=0.5)
    if record is None:
        return CaseResult(case, None, ["no call record from the server (is --http-port on?)"], transcript)
    said = [text for step in record.get("inputs", []) for text in step.get("said", [])]
    result = _Result(record.get("outcome", ""), "", _Path(list(record.get("path", [])), said))
    expect = {k: v for k, v in case.expect.items() if k != "variables"}  # not in the call record
    return CaseResult(case, None, check(expect, result), transcript)  # type: ignore[arg-type]


async def _wait_for_turn(api: Api, call_id: str, seen: int) -> int:
    """Wait until the flow listens for the next input; the new listen count, or -1 if it ended."""
    deadline = time.monotonic() + TURN_TIMEOUT
    while time.monotonic() < deadline:
        status, state = await api.aget(f"/api/calls/{call_id}")
        if status == 404:
            return -1
        if status == 200 and state["listening"] and state["listens"] > seen:
            return int(state["listens"])
        await asyncio.sleep(0.05)
    return -1


async def _record(api: Api, call_id: str) -> dict[str, Any] | None:
    for _ in range(100):
        status, record = await api.aget(f"/api/records/{call_id}")
        if status == 200:
            return dict(record)
        await asyncio.sleep(0.1)
    return None


async def run_file_sip(tests_path: Path, target: str, api: Api, cache_dir: Path) -> list[CaseResult]:
    _, cases = load_cases(tests_path)
    return [await run_case_sip(case, target, api, cache_dir) for case in cases]


def cmd_test_over_sip(args: argparse.Namespace) -> int:
    """``ivr test FLOW... --sip URI --api URL``: every case of each flow's tests as a real call."""
    token = args.token or os.environ.get("IVR_API_TOKEN", "")
    if not args.api or not token:
        print("ivr test: --sip needs the server's --api URL and --token (or IVR_API_TOKEN)", file=sys.stderr)
        return 2
    try:
        server = parse_uri(args.sip if args.sip.startswith("sip") else f"sip:{args.sip}")
    except SipParseError as exc:
        print(f"ivr test: bad --sip address: {exc.reason}", file=sys.stderr)
        return 2
    failed = 0
    for path in args.flows:
        tests_path = path if path.name.endswith(".tests.yaml") else tests_file_for(path)
        flow_path, _ = load_cases(tests_path)
        flow, _ = check_file(flow_path)
        name = flow.name if flow is not None else flow_path.stem
        # The flow runs on the server; its name is the number dialled (sip:support@server).
        target = f"sip:{server.user or name}@{server.host}:{server.port or 5060}"
        print(f"== {tests_path} over SIP to {target}")
        results = asyncio.run(run_file_sip(tests_path, target, Api(args.api, token), args.cache_dir))
        failed += report(results)
    return 1 if failed else 0
