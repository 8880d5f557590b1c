"""The call interface the flow interpreter drives: ``CallPort``.

The interpreter never touches sockets or audio. Whatever can speak, listen, transfer and hang up
implements this protocol: the SIP server over a ``Call``, ``ivr chat`` over a terminal, tests over a
scripted caller. All of them then run exactly the same flow logic.

Type-ahead rule: when a prompt is cut short (barge-in), ``say`` reports it, but the input that
interrupted stays pending and is returned by the next ``listen``. That is how a real phone line
behaves (the key is already in the queue), and it keeps adapters simple.

When the caller hangs up, any method may raise ``CallerHungUp``; the interpreter records it and
ends with the outcome ``hung_up_by_caller``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ivr.flow.expressions import Value


class CallerHungUp(Exception):
    """The caller is gone; adapters raise it from any awaited method."""


class LookupFailed(Exception):
    """A webhook failed: no answer within the timeout, an HTTP error, or a reply that is not JSON."""


HeardKind = Literal["keys", "speech", "noinput", "nomatch"]

# The recogniser's closing silence when a step sets none (ivr.media.vad.VadConfig.end_silence_ms);
# flows only need it to check that an early match can come before it.
DEFAULT_END_SILENCE = 0.6


@dataclass(frozen=True)
class Heard:
    kind: HeardKind
    digits: str = ""
    transcript: str = ""
    confidence: float = 1.0


@dataclass(frozen=True)
class SayResult:
    completed: bool
    interrupted_by: Heard | None = None  # for the record; the input itself is still pending


@dataclass(frozen=True)
class ListenSpec:
    """What to listen for. ``grammar`` lists the phrases allowed (empty: free speech)."""

    keys: bool = True
    speech: bool = True
    min_digits: int = 1
    max_digits: int = 1
    terminator: str | None = None
    timeout: float = 5.0  # seconds of silence before no-input
    inter_digit_timeout: float = 3.0
    grammar: tuple[str, ...] = ()
    language: str = "en"
    confidence: float = 0.5  # speech below this counts as no-match
    end_silence: float | None = None  # seconds of quiet that end speech; None: DEFAULT_END_SILENCE
    # Seconds a partial result must stay exactly one grammar phrase, over quiet, to end the turn
    # before the closing silence is complete; None: always wait for the whole silence.
    early_match: float | None = None


@dataclass(frozen=True)
class TransferRequest:
    skill: str | None
    queue: str | None
    language: str
    mode: Literal["bridge", "refer"]
    # What the IVR learned, for the agent's whisper, SIP headers and the CRM screen-pop.
    context: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class TransferOutcome:
    status: Literal["connected", "no_agent", "failed"]
    agent: str | None = None
    detail: str = ""

    @property
    def connected(self) -> bool:
        return self.status == "connected"


@dataclass(frozen=True)
class CallbackRequest:
    number: str
    language: str
    attempts: int
    spacing: float | None  # seconds between attempts; None: the server's default
    allowed_numbers: tuple[str, ...]  # regexes
    windows: tuple[str, ...]
    context: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackOutcome:
    status: Literal["booked", "declined", "failed"]
    number: str | None = None
    promise: str = ""  # what the caller was promised, e.g. "within 25 minutes"
    detail: str = ""

    @property
    def booked(self) -> bool:
        return self.status == "booked"


class CallPort(Protocol):
    """One call as the interpreter sees it."""

    @property
    def call_id(self) -> str: ...

    @property
    def caller(self) -> str: ...

    @property
    def called(self) -> str: ...

    async def say(self, text: str, *, barge_in: bool, recording: str | None = None) -> SayResult:
        """Speak ``text`` (or play ``recording``, a path relative to the flow file, if given)."""
        ...

    async def listen(self, spec: ListenSpec) -> Heard: ...

    async def transfer(self, request: TransferRequest) -> TransferOutcome: ...

    async def offer_callback(self, request: CallbackRequest) -> CallbackOutcome:
        """Run the callback dialogue (confirm number, window) and book it durably, or not."""
        ...

    async def hangup(self, reason: str) -> None: ...

    def now(self) -> dt.datetime:
        """The current time, timezone-aware (business hours, dates in prompts)."""
        ...


# A webhook call: (url, query parameters, timeout in seconds) -> the decoded JSON object.
HttpLookup = Callable[[str, Mapping[str, str], float], Awaitable[dict[str, Any]]]
