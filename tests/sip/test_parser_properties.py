"""Properties of the parsers: any bytes either parse or raise SipParseError; round trips are stable."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.sip.errors import SipParseError
from ivr.sip.framing import StreamFramer
from ivr.sip.message import SipRequest, make_response, parse_message
from ivr.sip.sdp import audio_media, negotiate, parse_sdp
from ivr.sip.uri import parse_name_addr, parse_uri
from tests.sip.test_message import VALID

CORPUS = list(VALID.values())
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_error(data: bytes) -> None:
    try:
        message = parse_message(data)
    except SipParseError as exc:
        assert 400 <= exc.status <= 599
        # the safety net in parse_message must never be what caught it: that would be a bug
        assert not exc.reason.startswith("unparseable message"), exc.reason
        if exc.partial is not None:
            # a partial request always has what make_response needs
            bytes(make_response(exc.partial, exc.status))
        return
    # whatever parses, serializes and parses back to the same thing
    assert parse_message(bytes(message)) == message


@FAST
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    _parse_or_error(data)


@FAST
@given(st.text(alphabet=st.sampled_from(list('INVITEsip:@;=<>"\\ \t\r\n:/,SIP/2.0CSeqVia1')), max_size=400))
def test_sip_flavoured_text(text: str) -> None:
    _parse_or_error(text.encode())


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] = draw(
                st.sampled_from([*list(b' \t\r\n:;,<>"\\@%=/0\x00\xff'), draw(st.integers(0, 255))])
            )
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        elif kind == "insert":
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"\r\n",
                        b"\r\n ",
                        b" ",
                        b";",
                        b",",
                        b"%",
                        b'"',
                        b"<",
                        b"\xc3",
                        b"Via: x\r\n",
                        b"\r\n\r\n",
                        b"Content-Length: 7\r\n",
                    ]
                )
            )
        elif kind == "truncate":
            del data[pos:]
        else:
            end = min(len(data), pos + draw(st.integers(1, 40)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_corpus(data: bytes) -> None:
    _parse_or_error(data)


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-.!%*_+`'~", min_size=1, max_size=12)
_user = st.text(alphabet="abcxyz0189-_.!~*'()&=+$,;?/", min_size=1, max_size=12)
_value = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\r\n"), max_size=30
).map(str.strip)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(_token)
    extra = draw(st.lists(st.tuples(_token.map(lambda t: "X-" + t), _value), max_size=5))
    body = draw(st.binary(max_size=200))
    lines = [
        f"{method} sip:{draw(_user)}@example.com SIP/2.0",
        f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{draw(_token)}",
        f"From: <sip:a@example.com>;tag={draw(_token)}",
        "To: <sip:b@example.com>",
        f"Call-ID: {draw(_token)}@h",
        f"CSeq: {draw(st.integers(0, 2**31 - 1))} {method}",
        *(f"{name}: {value}" for name, value in extra),
        f"Content-Length: {len(body)}",
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + body


@FAST
@given(requests())
def test_generated_requests_round_trip(data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    assert parse_message(bytes(message)) == message
    assert bytes(parse_message(bytes(message))) == bytes(message)


@FAST
@given(st.text(max_size=200))
def test_uri_parsers_raise_only_parse_errors(text: str) -> None:
    for parser in (parse_uri, parse_name_addr):
        try:
            value = parser(text)
        except SipParseError:
            continue
        assert parser(str(value)) == value


@FAST
@given(st.binary(max_size=600))
def test_sdp_raises_only_parse_errors(data: bytes) -> None:
    try:
        sd = parse_sdp(data)
    except SipParseError:
        return
    offer = audio_media(sd)
    if offer is not None:
        negotiate(offer)


@FAST
@given(st.lists(st.sampled_from([*CORPUS[:1], b"\r\n\r\n"]), min_size=1, max_size=5), st.data())
def test_framer_any_split(parts: list[bytes], data: st.DataObject) -> None:
    # Frame a stream made of whole messages and pings, fed in arbitrary chunks.
    from tests.sip.test_framing import message

    stream_parts = [message(b"x" * i, call_id=str(i)) if p != b"\r\n\r\n" else p for i, p in enumerate(parts)]
    stream = b"".join(stream_parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = StreamFramer()
    out: list[bytes] = []
    last = 0
    for cut in [*cuts, len(stream)]:
        out += framer.feed(stream[last:cut])
        last = cut
    assert out == [p for p in stream_parts if p != b"\r\n\r\n"]
