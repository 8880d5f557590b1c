"""The interpreter walks both example flows through every branch, over a scripted caller.

``ScriptedPort`` is a real ``CallPort`` (a caller following a script), not a mock of the
interpreter; the webhook tests talk to a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from ivr.flow import check_file, load_flow
from ivr.flow.conversation_tests import ScriptedPort, fake_webhook, load_cases, run_file
from ivr.flow.expressions import lookup_path
from ivr.flow.interpreter import FlowResult, Interpreter
from ivr.flow.port import SayResult
from ivr.flow.sources import http_lookup

FLOWS = Path(__file__).parents[2] / "flows"


def run(flow_path: Path, inputs: list[str], **kwargs: Any) -> tuple[FlowResult, ScriptedPort]:
    http = kwargs.pop("http", fake_webhook("fail"))
    port = ScriptedPort(inputs, **kwargs)
    return asyncio.run(Interpreter(load_flow(flow_path), port, http=http).run()), port


@pytest.mark.parametrize("name", ["support", "support-de", "demo"])
def test_every_case_passes_and_every_step_is_visited(name: str) -> None:
    errors, results = asyncio.run(run_file(FLOWS / f"{name}.tests.yaml"))
    assert errors == []
    failures = {r.case.name: r.failures for r in results if not r.passed}
    assert failures == {}
    flow = load_flow(FLOWS / f"{name}.yaml")
    visited = {(rec.scope, rec.step) for r in results if r.result for rec in r.result.path.records}
    every = {(scope.name, step) for scope in flow.scopes() for step in scope.steps}
    assert every - visited == set(), "every step of the example flow is exercised by a case"
    outcomes = {r.result.outcome for r in results if r.result}
    if name != "demo":
        assert outcomes == {"resolved", "transferred", "callback_booked", "hung_up_by_caller"}


def test_call_path_records_steps_inputs_and_times() -> None:
    result, port = run(FLOWS / "support.yaml", ["#1", "#10115", "#9"])
    first = result.path.records[0]
    assert (first.step, first.kind, first.outcome) == ("greeting", "say", "main_menu")
    menu = result.path.records[1]
    assert menu.inputs == [{"kind": "keys", "digits": "1"}]
    assert dt.datetime.fromisoformat(menu.ended) > dt.datetime.fromisoformat(menu.started)
    lookup = next(r for r in result.path.records if r.step == "find_outage")
    assert lookup.inputs == [{"lookup": "outage", "found": True}]
    assert result.path.records[-1].outcome == "resolved"
    json.dumps(result.path.as_list())  # the call detail record is plain JSON
    assert lookup_path(result.variables, ["lookup", "outage", "area"]) == "Berlin Mitte"
    assert port.hung_up == "resolved"


def test_transfer_carries_what_the_caller_already_said() -> None:
    result, port = run(FLOWS / "support.yaml", ["#2", "#40000000"], http=fake_webhook({}))
    assert result.outcome == "transferred"
    context = port.transfers[0].context
    assert context["order_number"] == "40000000"
    assert context["path"] == [
        "greeting",
        "main_menu",
        "order_number",
        "order_service",
        "order_unknown",
        "to_agent",
    ]
    assert (port.transfers[0].skill, port.transfers[0].queue, port.transfers[0].language) == (
        "support",
        "general",
        "en",
    )


def test_callback_request_follows_the_policy() -> None:
    result, port = run(FLOWS / "support-de.yaml", ["#0"], agents="none")
    request = port.callbacks[0]
    assert (request.number, request.attempts, request.spacing, request.language) == (
        "+4930123456",
        3,
        600.0,
        "de",
    )
    assert request.allowed_numbers == ("^\\+49[1-9][0-9]{6,13}$",)
    assert result.outcome == "callback_booked"


def test_a_flow_without_retry_spacing_leaves_it_to_the_server(tmp_path: Path) -> None:
    text = (FLOWS / "support-de.yaml").read_text(encoding="utf-8")
    assert "    spacing: 10m\n" in text
    (tmp_path / "data").mkdir()
    for data in (FLOWS / "data").iterdir():
        shutil.copy(data, tmp_path / "data" / data.name)
    flow = tmp_path / "support-de.yaml"
    flow.write_text(text.replace("    spacing: 10m\n", ""), encoding="utf-8")
    _, port = run(flow, ["#0"], agents="none")
    assert port.callbacks[0].spacing is None


def test_menu_listens_for_its_phrases_and_the_human_ones() -> None:
    _, port = run(FLOWS / "support.yaml", ["!hangup"])
    spec = port.listens[0]
    assert "tv is black" in spec.grammar and "agent" in spec.grammar
    assert (spec.max_digits, spec.timeout, spec.language) == (1, 6.0, "en")


def test_steps_are_logged_with_the_call_id() -> None:
    with capture_logs() as logs:
        run(FLOWS / "support.yaml", ["#0"])
    steps = [e for e in logs if e["event"] == "step"]
    assert [e["step"] for e in steps] == ["greeting", "main_menu", "to_agent"]
    assert all(e["call_id"] == "test-call" for e in logs)
    assert logs[-1]["event"] == "flow ended" and logs[-1]["outcome"] == "transferred"


# -- constructs the example flows do not use ----------------------------------------------------

EXTRA = """\
flow: extra
language: en
start: hello
settings:
  human: {key: "0", phrases: [agent], say: "Getting a person.", target: agent}
  intents:
    billing: ["my bill", "invoice is wrong"]
    moving: ["i am moving house", "new address"]
steps:
  hello:
    say: "Hello."
    barge_in: true
    next: card
  card:
    human: {disabled: true, reason: "0 is a valid digit of a card number"}
    collect:
      prompt: "Card number?"
      into: card
      min: 1
      max: 4
    next: count
  count:
    set:
      tries: 1
      label: "'card ' + card"
    next: topic
  topic:
    ask:
      prompt: "What is it about?"
      intents: {billing: bill, moving: moving}
      no_match: ["Say for example: my bill.", "Last try: bill or moving?"]
      attempts: 3
    human: {disabled: false}
  bill:
    call: check
    next: bye
  moving:
    set:
      broken: "'a' + tries"
    next: bye
  agent:
    transfer: {skill: billing, mode: refer}
    no_agent: bye
  bye:
    hangup: {say: "Bye {label}.", reason: done}
subflows:
  check:
    start: check_say
    steps:
      check_say:
        say: "Checking."
        next: check_menu
      check_menu:
        menu:
          prompt: "Press 1 to confirm."
          choices:
            - key: "1"
              next: back
          escalate: agent
      back:
        return: true
"""


@pytest.fixture
def extra(tmp_path: Path) -> Path:
    path = tmp_path / "extra.yaml"
    path.write_text(EXTRA, encoding="utf-8")
    _, errors = check_file(path)
    assert errors == []
    return path


def test_fast_path_key_disabled_with_a_reason_is_just_a_digit(extra: Path) -> None:
    result, _ = run(extra, ["#0", "my bill please", "#1"])
    assert result.variables["card"] == "0"
    assert result.variables["label"] == "card 0"
    assert result.path.steps == [
        "hello",
        "card",
        "count",
        "topic",
        "bill",
        "check_say",
        "check_menu",
        "back",
        "bye",
    ]
    assert result.variables["intent"] == "billing"
    assert result.path.said[-1] == "Bye card 0."


def test_disabled_fast_path_ignores_phrases_too_and_retries_escalate(extra: Path) -> None:
    result, port = run(extra, ["agent"])
    assert result.path.steps == ["hello", "card", "agent"]
    card = result.path.records[1]
    assert [i["kind"] for i in card.inputs] == ["speech", "noinput", "noinput"]
    assert {"human_fast_path": True} not in card.inputs  # reached by escalation, not by the shortcut
    assert "Getting a person." not in port.heard
    assert port.transfers[0].mode == "refer" and result.outcome == "transferred"


def test_ask_reprompts_by_attempt_then_escalates_to_the_human_target(extra: Path) -> None:
    result, port = run(extra, ["#12", "the weather", "mumble", "nothing"], agents="none", callback="decline")
    assert "Say for example: my bill." in port.heard and "Last try: bill or moving?" in port.heard
    assert result.path.steps[-2:] == ["agent", "bye"]
    topic = next(r for r in result.path.records if r.step == "topic")
    assert [i["kind"] for i in topic.inputs] == ["speech"] * 3


def test_intent_by_word_overlap(extra: Path) -> None:
    result, _ = run(extra, ["#1", "I'm moving to a new house address"])
    assert result.variables["intent"] == "moving"


def test_escalation_from_a_sub_flow_leaves_it(extra: Path) -> None:
    result, _ = run(extra, ["#1", "my bill", "", "", ""], agents="available")
    assert result.path.steps[-2:] == ["check_menu", "agent"] and result.outcome == "transferred"


def test_runtime_error_goes_to_a_person_once_then_ends_with_error(extra: Path) -> None:
    result, _ = run(extra, ["#1", "new address"], agents="available")
    assert result.path.steps[-2:] == ["moving", "agent"] and result.outcome == "transferred"


def test_barge_in_is_recorded(extra: Path) -> None:
    class Interrupting(ScriptedPort):
        async def say(self, text: str, *, barge_in: bool, recording: str | None = None) -> SayResult:
            await super().say(text, barge_in=barge_in, recording=recording)
            return SayResult(completed=not barge_in)

    port = Interrupting(["!hangup"])
    result = asyncio.run(Interpreter(load_flow(extra), port).run())
    assert result.path.records[0].inputs == [{"barge_in": True, "kind": "unknown"}]
    assert result.outcome == "hung_up_by_caller"


def test_business_hours_choose_the_start(tmp_path: Path) -> None:
    saturday_evening = dt.datetime(2024, 5, 4, 17, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    result, _ = run(FLOWS / "support.yaml", ["!hangup"], clock=saturday_evening)
    assert result.path.steps[0] == "closed_greeting" and result.variables["open"] is False
    saturday_noon = saturday_evening.replace(hour=12)
    result, _ = run(FLOWS / "support.yaml", ["!hangup"], clock=saturday_noon)
    assert result.path.steps[0] == "greeting"


# -- the webhook, over real HTTP ------------------------------------------------------------------


class _Orders(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if "40099999" in self.path:
            body = json.dumps(
                {"number": "40099999", "status": "delivered", "delivered": "2024-05-02"}
            ).encode()
            self.send_response(200)
        elif "40000500" in self.path or "4001234" in self.path:  # the service is broken for these
            body = b"oops"
            self.send_response(500)
        elif "40000777" in self.path:
            time.sleep(1.5)  # slower than the flow's timeout
            body = b"{}"
            self.send_response(200)
        else:
            body = b"{}"
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:
            pass  # the IVR gave up waiting: that is the point of the slow case

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def order_service() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Orders)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def support_with_service(tmp_path: Path, order_service: int) -> Path:
    shutil.copytree(FLOWS / "data", tmp_path / "data")
    text = (FLOWS / "support.yaml").read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:8089/orders", f"http://127.0.0.1:{order_service}/orders")
    text = text.replace("timeout: 2s", "timeout: 0.5s")
    path = tmp_path / "support.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("number", "steps", "heard"),
    [
        (
            "40099999",
            ["order_service", "order_state", "order_delivered"],
            "was delivered Thursday, May second",
        ),
        ("40000000", ["order_service", "order_unknown", "to_agent"], "I could not find the order"),
        ("40000500", ["order_service", "order_table", "order_unknown"], "I could not find the order"),
        ("40012345", ["order_service", "order_table", "order_state", "order_shipped"], "on its way"),
        ("40000777", ["order_service", "order_table", "order_unknown"], "I could not find the order"),
    ],
)
def test_order_webhook_over_http(
    support_with_service: Path, number: str, steps: list[str], heard: str
) -> None:
    result, port = run(support_with_service, ["#2", f"#{number}", "#9"], http=http_lookup)
    path = result.path.steps
    start = path.index(steps[0])
    assert path[start : start + len(steps)] == steps
    assert any(heard in text for text in port.heard)


def test_every_tests_file_names_its_flow() -> None:
    for tests in FLOWS.glob("*.tests.yaml"):
        flow_path, cases = load_cases(tests)
        assert flow_path.exists() and cases
