"""Events the SIP user agent core hands up to the application (see useragent.py).

Like h11's events, these are frozen dataclasses: plain data, no behaviour, safe to queue and to
compare in tests. `call_id` is the SIP Call-ID, which is also the handle the application passes
back into the UserAgent action methods.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.sip.message import SipRequest


@dataclass(frozen=True)
class IncomingCall:
    """A new INVITE outside any dialog was accepted for processing (100 Trying already sent)."""

    call_id: str
    request: SipRequest
    offer_sdp: bytes | None
    remote_addr: tuple[str, int]


@dataclass(frozen=True)
class CallCancelled:
    """The caller sent CANCEL before we answered; 487 has been sent (RFC 3261 §9.2)."""

    call_id: str


@dataclass(frozen=True)
class CallConfirmed:
    """The ACK for our 2xx arrived: the dialog is confirmed (RFC 3261 §13.3.1.4)."""

    call_id: str


@dataclass(frozen=True)
class ReInviteReceived:
    """A re-INVITE arrived in a confirmed dialog; answer it with UserAgent.answer_reinvite."""

    call_id: str
    offer_sdp: bytes | None


@dataclass(frozen=True)
class ReInviteAnswered:
    """Our re-INVITE got a final response (2xx: accepted with `answer_sdp`; otherwise refused)."""

    call_id: str
    status: int
    answer_sdp: bytes | None


@dataclass(frozen=True)
class CallEnded:
    """The call is over. `status` is the final response that ended it, when one did."""

    call_id: str
    reason: str
    by_remote: bool
    status: int | None = None


@dataclass(frozen=True)
class OutgoingProgress:
    """A provisional response (100/18x) to our INVITE."""

    call_id: str
    status: int
    early_sdp: bytes | None = None


@dataclass(frozen=True)
class OutgoingAnswered:
    """Our INVITE was answered with a 2xx; the ACK has been sent."""

    call_id: str
    answer_sdp: bytes


@dataclass(frozen=True)
class OutgoingFailed:
    """Our INVITE ended with a non-2xx final response (status 408 for Timer B)."""

    call_id: str
    status: int
    reason: str


@dataclass(frozen=True)
class RegistrationChanged:
    """REGISTER outcome: `registered` with the granted `expires`, or not (status says why)."""

    aor: str
    registered: bool
    expires: int
    status: int


@dataclass(frozen=True)
class ReferResult:
    """Progress of a blind transfer (RFC 3515): the REFER response, then each NOTIFY sipfrag.

    `final` is True once the transfer has succeeded or failed for good.
    """

    call_id: str
    status: int
    final: bool


@dataclass(frozen=True)
class InfoReceived:
    """An in-dialog INFO (e.g. application/dtmf-relay); already answered with 200."""

    call_id: str
    content_type: str | None
    body: bytes


@dataclass(frozen=True)
class MessageDropped:
    """A datagram or message was dropped (malformed, stray, unmatched); for counters and logs."""

    reason: str


Event = (
    IncomingCall
    | CallCancelled
    | CallConfirmed
    | ReInviteReceived
    | ReInviteAnswered
    | CallEnded
    | OutgoingProgress
    | OutgoingAnswered
    | OutgoingFailed
    | RegistrationChanged
    | ReferResult
    | InfoReceived
    | MessageDropped
)
