"""``ivr chat FLOW``: talk to a flow in the terminal, with the server's own interpreter.

The operator plays the caller: a line of text is what the caller says, ``#5`` presses keys, an empty
line is silence (no input), ``!hangup`` or end of input hangs up. The IVR's side is printed with the
step it comes from, so the operator sees the path as well as the words. Transfers and callback
offers are answered by ``--agents`` and ``--callback``, so a conversation can be replayed from a file.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import TextIO

from ivr.flow import model as m
from ivr.flow.conversation_tests import parse_input
from ivr.flow.interpreter import FlowResult, Interpreter
from ivr.flow.port import (
    CallbackOutcome,
    CallbackRequest,
    CallerHungUp,
    Heard,
    HttpLookup,
    ListenSpec,
    SayResult,
    TransferOutcome,
    TransferRequest,
)
from ivr.flow.sources import http_lookup


class TerminalPort:
    """A ``CallPort`` whose caller is a person at a terminal (or a script on stdin)."""

    def __init__(
        self,
        lines: TextIO,
        write: Callable[[str], None],
        *,
        agents: str = "none",
        callback: str = "accept",
        caller: str = "+4930123456",
        clock: Callable[[], dt.datetime] | None = None,
        prompt: bool = False,
    ) -> None:
        self.lines = lines
        self.write = write
        self.agents = agents
        self.callback = callback
        self.caller_number = caller
        self.clock = clock or (lambda: dt.datetime.now().astimezone())
        self.show_prompt = prompt
        self.step = ""
        self.gone = False

    @property
    def call_id(self) -> str:
        return "chat"

    @property
    def caller(self) -> str:
        return self.caller_number

    @property
    def called(self) -> str:
        return "ivr"

    async def say(self, text: str, *, barge_in: bool, recording: str | None = None) -> SayResult:
        self.write(f"[{self.step}] IVR: {text}")
        return SayResult(completed=True)

    async def listen(self, spec: ListenSpec) -> Heard:
        what = "keys or speech" if spec.speech else "keys"
        if self.show_prompt:
            self.write(f"  (listening for {what}; #digits for keys, empty line for silence)")
        line = self.lines.readline()
        if not line:
            self.gone = True
            raise CallerHungUp("end of input")
        action = parse_input(line.rstrip("\n"))
        if action == "hangup":
            self.gone = True
            raise CallerHungUp("caller hung up")
        assert isinstance(action, Heard)
        shown = f"keys {action.digits}" if action.kind == "keys" else action.transcript or f"({action.kind})"
        self.write(f"[{self.step}] caller: {shown}")
        if action.kind == "keys" and spec.terminator and action.digits.endswith(spec.terminator):
            return Heard("keys", digits=action.digits[: -len(spec.terminator)])
        return action

    async def transfer(self, request: TransferRequest) -> TransferOutcome:
        where = ", ".join(f"{k}={v}" for k, v in (("skill", request.skill), ("queue", request.queue)) if v)
        self.write(f"[{self.step}] -> transfer to a person ({where}, {request.mode}): agents {self.agents}")
        if self.agents == "available":
            return TransferOutcome("connected", agent="agent")
        return TransferOutcome("no_agent")

    async def offer_callback(self, request: CallbackRequest) -> CallbackOutcome:
        self.write(f"[{self.step}] -> callback offered to {request.number}: caller will {self.callback}")
        if self.callback == "accept":
            return CallbackOutcome("booked", number=request.number, promise="within 25 minutes")
        return CallbackOutcome("declined", number=request.number)

    async def hangup(self, reason: str) -> None:
        self.write(f"[{self.step}] IVR hangs up ({reason})")

    def now(self) -> dt.datetime:
        return self.clock()


async def chat(
    flow: m.Flow,
    lines: TextIO = sys.stdin,
    write: Callable[[str], None] = print,
    *,
    agents: str = "none",
    callback: str = "accept",
    clock: Callable[[], dt.datetime] | None = None,
    http: HttpLookup = http_lookup,
) -> FlowResult:
    port = TerminalPort(lines, write, agents=agents, callback=callback, clock=clock, prompt=lines.isatty())
    write(f"-- {flow.name} ({flow.settings.language}); type what the caller says, #digits for keys")

    def label(scope: str, step: str) -> None:
        port.step = f"{scope}/{step}" if scope else step

    result = await Interpreter(flow, port, http=http, on_step=label).run()
    write(f"-- outcome: {result.outcome} ({result.reason}); path: {' -> '.join(result.path.steps)}")
    return result
