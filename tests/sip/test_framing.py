"""Framing SIP over a byte stream (RFC 3261 §18.3) with RFC 5626 keep-alives."""

from __future__ import annotations

import pytest

from ivr.sip.errors import SipParseError
from ivr.sip.framing import StreamFramer
from ivr.sip.message import parse_message


def message(body: bytes = b"", cl_name: str = "Content-Length", call_id: str = "a") -> bytes:
    return (
        f"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\n"
        f"To: <sip:a@b>\r\nCall-ID: {call_id}\r\nCSeq: 1 MESSAGE\r\n{cl_name}: {len(body)}\r\n\r\n"
    ).encode() + body


def test_two_messages_in_one_read() -> None:
    f = StreamFramer()
    one, two = message(b"hello", call_id="1"), message(b"", cl_name="l", call_id="2")
    assert f.feed(one + two) == [one, two]
    assert f.buffered == 0


def test_byte_by_byte() -> None:
    f = StreamFramer()
    data = message(b"body\r\n\r\nwith blank lines")
    out: list[bytes] = []
    for i in range(len(data)):
        out += f.feed(data[i : i + 1])
    assert out == [data]
    assert parse_message(out[0]).body == b"body\r\n\r\nwith blank lines"


def test_keepalives_are_skipped_and_counted() -> None:
    f = StreamFramer()
    m = message()
    assert f.feed(b"\r\n\r\n") == []
    assert f.pings == 1
    assert f.feed(b"\r\n") == []  # maybe half a ping
    assert f.feed(b"\r\n" + m + b"\r\n\r\n") == [m]
    assert f.pings == 3
    assert f.buffered == 0


def test_missing_content_length_is_400() -> None:
    f = StreamFramer()
    with pytest.raises(SipParseError) as info:
        f.feed(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n")
    assert info.value.status == 400
    with pytest.raises(SipParseError):  # the stream stays failed
        f.feed(message())


@pytest.mark.parametrize("value", [b"-1", b"abc", b"", b"1 2", b"99999999999"])
def test_invalid_content_length_is_400(value: bytes) -> None:
    with pytest.raises(SipParseError) as info:
        StreamFramer().feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: " + value + b"\r\n\r\n")
    assert info.value.status == 400


def test_conflicting_content_length_is_400() -> None:
    with pytest.raises(SipParseError):
        StreamFramer().feed(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab")


def test_oversized_message_is_513_and_buffer_bounded() -> None:
    f = StreamFramer(max_size=1000)
    with pytest.raises(SipParseError) as info:
        f.feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n")
    assert info.value.status == 513
    g = StreamFramer(max_size=1000)
    with pytest.raises(SipParseError) as info:
        for _ in range(100):
            g.feed(b"X-Header: " + b"a" * 50 + b"\r\n")
    assert info.value.status == 513
    assert g.buffered == 0


def test_bare_lf_head_and_folded_lines() -> None:
    data = b"MESSAGE sip:a@b SIP/2.0\nX-Folded: a\n Content-Length: 99\nl: 2\n\nhi"
    assert StreamFramer().feed(data) == [data]
