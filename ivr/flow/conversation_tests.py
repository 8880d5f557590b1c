"""``ivr test FLOW``: conversation tests written by operators beside the flow.

``flows/support.tests.yaml`` lists cases: what the caller does, in order, and what must happen::

    flow: support.yaml
    defaults: {time: "2024-05-06T10:00:00+02:00", caller: "+4930123456"}
    cases:
      - name: outage by keys
        inputs: ["#1", "#10115"]          # "#..." keys, text = speech, "" = silence,
                                          # "!nomatch" = unintelligible, "!hangup" = caller hangs up
        agents: none                      # transfer result: available | none | failed
        callback: accept                  # callback dialogue: accept | decline | fail
        webhook: fail                     # fail | {reply as JSON} (a fake order service)
        expect:
          steps: [main_menu, outage_postcode, outage_known]   # visited in this order (gaps allowed)
          path: [...]                     # or: exactly this path
          says: ["known internet outage"] # words heard, in order
          outcome: resolved               # or transferred, callback_booked, hung_up_by_caller, error
          variables: {postcode: "10115"}

Cases run through the interpreter with ``ScriptedPort``, a caller that follows its script. The
same cases can run over another port (``PortFactory``): the SIP server wires real calls there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ivr.flow import model as m
from ivr.flow.interpreter import FlowResult, Interpreter
from ivr.flow.matching import normalize
from ivr.flow.port import (
    CallbackOutcome,
    CallbackRequest,
    CallerHungUp,
    CallPort,
    Heard,
    HttpLookup,
    ListenSpec,
    LookupFailed,
    SayResult,
    TransferOutcome,
    TransferRequest,
)
from ivr.flow.validate import check_file

DEFAULT_TIME = "2024-05-06T10:00:00+02:00"  # a Monday morning, inside most business hours


def parse_input(text: str) -> Heard | str:
    """One scripted caller action: a ``Heard``, or ``"hangup"``."""
    if text == "!hangup":
        return "hangup"
    if text == "!nomatch":
        return Heard("nomatch")
    if text.strip() == "":
        return Heard("noinput")
    if text.startswith("#"):
        return Heard("keys", digits=text[1:])
    return Heard("speech", transcript=text, confidence=0.9)


@dataclass
class ScriptedPort:
    """A caller who follows a script: the real test double for flows (and ``ivr test``'s port)."""

    inputs: list[str]
    agents: str = "available"
    callback: str = "accept"
    clock: dt.datetime = field(default_factory=lambda: dt.datetime.fromisoformat(DEFAULT_TIME))
    caller_number: str = "+4930123456"
    called_number: str = "+4930999000"
    id: str = "test-call"
    heard: list[str] = field(default_factory=list)  # everything the IVR said, in order
    events: list[str] = field(default_factory=list)
    hung_up: str | None = None
    transfers: list[TransferRequest] = field(default_factory=list)
    callbacks: list[CallbackRequest] = field(default_factory=list)
    listens: list[ListenSpec] = field(default_factory=list)

    @property
    def call_id(self) -> str:
        return self.id

    @property
    def caller(self) -> str:
        return self.caller_number

    @property
    def called(self) -> str:
        return self.called_number

    def _gone(self) -> None:
        if self.hung_up is not None:
            raise CallerHungUp(self.hung_up)

    async def say(self, text: str, *, barge_in: bool, recording: str | None = None) -> SayResult:
        self._gone()
        self.heard.append(text)
        self.events.append(f"say: {text}")
        self.clock += dt.timedelta(seconds=1)
        return SayResult(completed=True)

    async def listen(self, spec: ListenSpec) -> Heard:
        self._gone()
        self.listens.append(spec)
        if not self.inputs:
            self.clock += dt.timedelta(seconds=spec.timeout)
            return Heard("noinput")
        action = parse_input(self.inputs.pop(0))
        if action == "hangup":
            self.hung_up = "caller hung up"
            raise CallerHungUp(self.hung_up)
        assert isinstance(action, Heard)
        self.events.append(f"caller: {action.kind} {action.digits or action.transcript}".rstrip())
        self.clock += dt.timedelta(seconds=2)
        if action.kind == "keys" and spec.terminator and action.digits.endswith(spec.terminator):
            return Heard("keys", digits=action.digits[: -len(spec.terminator)])
        return action

    async def transfer(self, request: TransferRequest) -> TransferOutcome:
        self._gone()
        self.transfers.append(request)
        self.events.append(f"transfer: skill={request.skill} queue={request.queue} -> {self.agents}")
        if self.agents == "available":
            return TransferOutcome("connected", agent="agent-1")
        return TransferOutcome("failed" if self.agents == "failed" else "no_agent")

    async def offer_callback(self, request: CallbackRequest) -> CallbackOutcome:
        self._gone()
        self.callbacks.append(request)
        self.events.append(f"callback offered to {request.number} -> {self.callback}")
        if self.callback == "accept":
            return CallbackOutcome("booked", number=request.number, promise="within 25 minutes")
        return CallbackOutcome("failed" if self.callback == "fail" else "declined", number=request.number)

    async def hangup(self, reason: str) -> None:
        self.events.append(f"hangup: {reason}")
        self.hung_up = reason

    def now(self) -> dt.datetime:
        return self.clock


def fake_webhook(reply: object) -> HttpLookup:
    """A webhook service that answers ``reply`` (a JSON object), or fails when reply is "fail"."""

    async def lookup(url: str, params: Mapping[str, str], timeout: float) -> dict[str, Any]:
        if not isinstance(reply, dict):
            raise LookupFailed("service unavailable (test)")
        return dict(reply)

    return lookup


# -- cases ----------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    inputs: list[str]
    expect: dict[str, Any]
    agents: str = "available"
    callback: str = "accept"
    webhook: object = "fail"
    time: str = DEFAULT_TIME
    caller: str = "+4930123456"


@dataclass
class CaseResult:
    case: Case
    result: FlowResult | None
    failures: list[str]
    transcript: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


PortFactory = Callable[[Case], Awaitable[tuple[CallPort, HttpLookup]]]


def load_cases(path: Path) -> tuple[Path, list[Case]]:
    """The flow file the tests name, and their cases."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise ValueError(f"{path}: expected a mapping with 'flow' and a list of 'cases'")
    flow = path.parent / str(data.get("flow", path.name.replace(".tests.yaml", ".yaml")))
    defaults = dict(data.get("defaults") or {})
    cases = []
    for i, raw in enumerate(data["cases"]):
        merged = {**defaults, **raw}
        cases.append(
            Case(
                name=str(merged.get("name", f"case {i + 1}")),
                inputs=[str(x) if x is not None else "" for x in merged.get("inputs", [])],
                expect=dict(merged.get("expect") or {}),
                agents=str(merged.get("agents", "available")),
                callback=str(merged.get("callback", "accept")),
                webhook=merged.get("webhook", "fail"),
                time=str(merged.get("time", DEFAULT_TIME)),
                caller=str(merged.get("caller", "+4930123456")),
            )
        )
    return flow, cases


def tests_file_for(flow_path: Path) -> Path:
    return flow_path.with_name(flow_path.name.removesuffix(".yaml") + ".tests.yaml")


async def scripted_port(case: Case) -> tuple[CallPort, HttpLookup]:
    port = ScriptedPort(
        list(case.inputs),
        agents=case.agents,
        callback=case.callback,
        clock=dt.datetime.fromisoformat(case.time),
        caller_number=case.caller,
    )
    return port, fake_webhook(case.webhook)


async def run_case(flow: m.Flow, case: Case, factory: PortFactory = scripted_port) -> CaseResult:
    port, http = await factory(case)
    result = await Interpreter(flow, port, http=http).run()
    transcript = list(getattr(port, "events", []))
    return CaseResult(case, result, check(case.expect, result), transcript)


def _subsequence(wanted: Sequence[str], seen: Sequence[str]) -> bool:
    it = iter(seen)
    return all(any(w == s for s in it) for w in wanted)


def check(expect: Mapping[str, Any], result: FlowResult) -> list[str]:
    failures: list[str] = []
    steps = result.path.steps
    if "steps" in expect and not _subsequence([str(s) for s in expect["steps"]], steps):
        failures.append(
            "steps not visited in this order:\n" + _diff([str(s) for s in expect["steps"]], steps)
        )
    if "path" in expect and [str(s) for s in expect["path"]] != steps:
        failures.append("path differs:\n" + _diff([str(s) for s in expect["path"]], steps))
    said = [normalize(t) for t in result.path.said]
    position = 0
    for words in expect.get("says", []):
        wanted = normalize(str(words))
        hit = next((i for i in range(position, len(said)) if wanted in said[i]), None)
        if hit is None:
            failures.append(
                f"never heard {words!r} (after prompt {position + 1}); heard:\n"
                + "\n".join(f"  {t}" for t in result.path.said)
            )
            break
        position = hit
    for words in expect.get("never_says", []):
        if any(normalize(str(words)) in t for t in said):
            failures.append(f"heard {words!r}, which must not be said")
    if "outcome" in expect and expect["outcome"] != result.outcome:
        failures.append(f"outcome: expected {expect['outcome']}, got {result.outcome} ({result.reason})")
    for name, value in (expect.get("variables") or {}).items():
        if result.variables.get(name) != value:
            failures.append(f"variable {name}: expected {value!r}, got {result.variables.get(name)!r}")
    return failures


def _diff(expected: Sequence[str], actual: Sequence[str]) -> str:
    lines = difflib.unified_diff(list(expected), list(actual), "expected", "actual", lineterm="", n=2)
    return "\n".join(f"    {line}" for line in lines)


async def run_file(
    tests_path: Path, factory: PortFactory = scripted_port
) -> tuple[list[m.FlowError], list[CaseResult]]:
    flow_path, cases = load_cases(tests_path)
    flow, errors = check_file(flow_path)
    if flow is None:
        return errors, []
    return [], [await run_case(flow, case, factory) for case in cases]


def report(results: Sequence[CaseResult], out: Callable[[str], None] = print) -> int:
    """Print PASS/FAIL per case; returns the number of failures."""
    failed = 0
    for r in results:
        if r.passed:
            out(f"PASS  {r.case.name}")
            continue
        failed += 1
        out(f"FAIL  {r.case.name}")
        for failure in r.failures:
            out("      " + failure.replace("\n", "\n      "))
        if r.result is not None:
            out(f"      path: {' -> '.join(r.result.path.steps)}")
    out(f"{len(results) - failed} passed, {failed} failed")
    return failed


def main_test(paths: Sequence[Path], out: Callable[[str], None] = print) -> int:
    total_failed = 0
    for path in paths:
        tests_path = path if path.name.endswith(".tests.yaml") else tests_file_for(path)
        if not tests_path.exists():
            out(f"{tests_path}: no test cases found")
            total_failed += 1
            continue
        out(f"== {tests_path}")
        try:
            errors, results = asyncio.run(run_file(tests_path))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            out(f"{tests_path}: {exc}")
            total_failed += 1
            continue
        for error in errors:
            out(str(error))
        total_failed += len(errors) + report(results, out)
    return 1 if total_failed else 0
