"""The errors the SIP core raises for what it is given, each carrying the response to send.

In the manner of h11's ``RemoteProtocolError(..., error_status_hint=...)``: the core never decides
whether an answer goes out (a datagram may be too broken to answer, an ACK is never answered), but
it always says which status it would be, so that the shell or the UA core can build the response
without knowing why the input was refused.

This module imports nothing from the rest of the package, so every other module (the message
parser, URIs, SDP, the lexer) can raise these errors without importing one another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the partial request is only carried, never built here
    from ivr.sip.message import SipRequest


class SipError(Exception):
    """Something from the network the SIP core refuses; ``status`` is the response to send."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class SipParseError(SipError):
    """Malformed input: a message, a header value, a URI or an SDP body (RFC 3261 §8.2, §21.4).

    ``status`` is 400 unless the RFCs name another (413/513 too large, 416 unsupported URI scheme,
    505 unsupported version). ``partial`` is the request when enough of it was read (Via, From,
    To, Call-ID and CSeq) to answer it statelessly with that status.
    """

    def __init__(self, status: int, reason: str, partial: SipRequest | None = None) -> None:
        super().__init__(status, reason)
        self.partial = partial
