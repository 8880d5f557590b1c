"""Cutting SIP messages out of a byte stream (TCP/TLS), RFC 3261 §18.3.

On a stream the only message boundary is Content-Length, which is therefore mandatory there. CRLFs
between messages are keep-alives (RFC 5626 §3.5.1: a client pings with CRLFCRLF and expects a
single CRLF pong); the framer skips them and counts pings so the shell can answer.

The buffer is bounded: a header section or a whole message larger than ``max_size`` raises
SipParseError(513) before more than ``max_size`` plus one read is held. After any error the
stream cannot be resynchronised and the shell must close the connection (after sending the 400
or 513 it was handed, if it can).
"""

from __future__ import annotations

from ivr.sip.errors import SipParseError
from ivr.sip.message import MAX_MESSAGE_SIZE

_CL_NAMES = (b"content-length", b"l")


def _content_length(head: bytes) -> int:
    found: int | None = None
    for raw in head.split(b"\n"):
        if raw[:1] in (b" ", b"\t"):
            continue  # folded continuation of some other header
        colon = raw.find(b":")
        if colon <= 0 or raw[:colon].rstrip(b" \t").lower() not in _CL_NAMES:
            continue
        text = raw[colon + 1 :].strip()
        if not text.isdigit() or len(text) > 9:
            raise SipParseError(400, "invalid Content-Length")
        value = int(text)
        if found is not None and found != value:
            raise SipParseError(400, "conflicting Content-Length headers")
        found = value
    if found is None:
        # RFC 3261 §18.3: "In the case of stream-oriented transports such as TCP, the
        # Content-Length header field indicates the size of the body ... MUST be used".
        raise SipParseError(400, "missing Content-Length on a stream transport")
    return found


class StreamFramer:
    """Feed bytes as they arrive; get back complete messages, each ready for ``parse_message``."""

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self.pings = 0  # CRLFCRLF keep-alives seen; the shell answers each with one CRLF
        self._buffer = bytearray()
        self._failed: SipParseError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        if self._failed is not None:
            raise self._failed
        self._buffer += data
        messages: list[bytes] = []
        try:
            while self._next(messages):
                pass
        except SipParseError as exc:
            self._failed = exc
            self._buffer.clear()
            raise
        return messages

    def _next(self, messages: list[bytes]) -> bool:
        buf = self._buffer
        # Skip keep-alives. A lone CRLF may be the first half of a CRLFCRLF ping, so only count
        # a ping when both halves are here.
        skip = 0
        while skip < len(buf) and buf[skip] in (0x0D, 0x0A):
            if buf.startswith(b"\r\n\r\n", skip):
                self.pings += 1
                skip += 4
            elif buf.startswith(b"\r\n", skip) and len(buf) - skip == 2:
                break  # maybe half a ping; wait for more
            else:
                skip += 1
        if skip:
            del buf[:skip]
        if not buf or buf[0] in (0x0D, 0x0A):
            return False
        end = buf.find(b"\r\n\r\n")
        sep = 4
        lf = buf.find(b"\n\n", 0, end if end >= 0 else len(buf))
        if lf >= 0:
            end, sep = lf, 2
        if end < 0:
            if len(buf) > self.max_size:
                raise SipParseError(513, "header section too large")
            return False
        head_len = end + sep
        total = head_len + _content_length(bytes(buf[:end]))
        if total > self.max_size:
            raise SipParseError(513, "message too large")
        if len(buf) < total:
            return False
        messages.append(bytes(buf[:total]))
        del buf[:total]
        return True
