"""SIP message parsing: RFC 4475 torture messages, RFC 3261 rules, serialization, responses."""

from __future__ import annotations

import pytest

from ivr.sip.errors import SipParseError
from ivr.sip.message import (
    MAX_MESSAGE_SIZE,
    Headers,
    SipRequest,
    SipResponse,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_cseq,
    parse_message,
    parse_via,
)


def sip(text: str) -> bytes:
    """RFC 4475 §2 convention: messages are written with LF; on the wire every line ends in CRLF."""
    return text.replace("\n", "\r\n").encode("utf-8")


SDP = """v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"""

# RFC 4475 §3.1.1.1 (wsinv): a short tortuous INVITE.
WSINV = sip(
    """INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

"""
    + SDP
)

# RFC 4475 §3.1.1.2 (intmeth): wide range of valid characters.
INTMETH = sip(
    "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    ":&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\n"
    "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\n"
    'To: "BEL:\x07 NUL:\x00 DEL:\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;*@example.com>\n'
    "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="
    '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439";tag=_token~1\'+`*%!-.\n'
    "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\n"
    "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\n"
    "Max-Forwards: 255\n"
    "extensionHeader-!.%*+_`'~:\ufeff\u5927\u505c\u96fb\n"
    "Content-Length: 0\n\n"
)

# RFC 4475 §3.1.1.3 (esc01): valid use of the % escaping mechanism.
ESC01 = sip(
    """INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: 150

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"""
)

# RFC 4475 §3.1.1.4 (escnull): escaped NULs in URIs.
ESCNULL = sip(
    """REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0

"""
)

# RFC 4475 §3.1.1.5 (esc02): % that is not an escape (method, display name, branch).
ESC02 = sip(
    """RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0

"""
)

# RFC 4475 §3.1.1.6 (lwsdisp): no LWS between display name and <.
LWSDISP = sip(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0

"""
)


def _longreq() -> bytes:
    vias = (
        "\n".join([f"Via: SIP/2.0/TCP sip{n}.example.com" for n in range(33, 0, -1)])
        .replace("Via: SIP/2.0/TCP sip32", "v: SIP/2.0/TCP sip32")
        .replace("Via: SIP/2.0/TCP sip31", "V: SIP/2.0/TCP sip31")
        .replace("Via: SIP/2.0/TCP sip29", "ViA: SIP/2.0/TCP sip29")
        .replace("Via: SIP/2.0/TCP sip22", "V :  SIP/2.0/TCP sip22")
        .replace("Via: SIP/2.0/TCP sip19", "v  : SIP/2.0/TCP sip19")
    )
    caller = "amazinglylongcallername" * 5
    to_line = (
        f'To: "I have a user name of {"extreme" * 10} proportion" <sip:user@example.com:6000;'
        f"unknownparam1=very{'long' * 20}value;longparam{'name' * 25}=shortvalue;"
        f"very{'long' * 25}ParameterNameWithNoValue>"
    )
    from_line = (
        f"F: sip:{caller}@example.net;tag=12{'982' * 50}424;unknownheaderparam{'name' * 20}="
        f"unknowheaderparam{'value' * 15};unknownValueless{'paramname' * 10}"
    )
    long = "long" * 20
    unknown_line = (
        f"Unknown-{'Long' * 20}-Name: unknown-{long}-value;"
        f"unknown-{long}-parameter-name=unknown-{long}-parameter-value"
    )
    return sip(
        f"""INVITE sip:user@example.com SIP/2.0
{to_line}
{from_line}
Call-ID: longreq.one{"really" * 20}longcallid
CSeq: 3882340 INVITE
{unknown_line}
{vias}
Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very{"long" * 50}branchvalue
Max-Forwards: 70
Contact: <sip:{caller}@host5.example.net>
Content-Type: application/sdp
l: 150

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"""
    )


# RFC 4475 §3.1.1.7 (longreq): long values in header fields, 34 Via headers of varied case.
LONGREQ = _longreq()

# RFC 4475 §3.1.1.8 (dblreq): extra trailing octets in a UDP datagram.
DBLREQ = sip(
    """REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0

INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: 150

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.15
s=-
c=IN IP4 192.0.2.15
t=0 0
m=audio 49217 RTP/AVP 0 12
m =video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"""
)

# RFC 4475 §3.1.1.9 (semiuri): semicolon-separated parameters in the URI user part.
SEMIURI = sip(
    """OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0

"""
)

# RFC 4475 §3.1.1.10 (transports): varied and unknown transport types.
TRANSPORTS = sip(
    """OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0

"""
)

# RFC 4475 §3.1.1.11 (mpart01): multipart body; the binary S/MIME part is replaced by arbitrary
# octets, which is what matters to a parser: the body is opaque and exactly Content-Length long.
_MPART_BODY = (
    b"--7a9cbec02ceef655\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"Hello\r\n--7a9cbec02ceef655\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\n\x30\x82\x01\x52\x06\x09\xff\x00\r\n\r\n\xfe\x80"
    b"\r\n--7a9cbec02ceef655--\r\n"
)
MPART01 = (
    sip(
        """MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuPCNVzjFt9Ld3uCHpGDaywwSbh3nA9rB
Content-Type: multipart/mixed;boundary=7a9cbec02ceef655
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..
CSeq: 1 MESSAGE
Date: Sat, 15 Oct 2005 04:44:56 GMT
User-Agent: SIPimp.org/0.2.5 (curses)
"""
    )
    + f"Content-Length: {len(_MPART_BODY)}\r\n\r\n".encode()
    + _MPART_BODY
)

# RFC 4475 §3.1.1.12 (unreason): unusual reason phrase, with UTF-8.
UNREASON = sip(
    "SIP/2.0 200 = 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d"
    "\u043e\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441"
    "\u0442\u043e\u0435\n"
    """Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.198
s=-
c=IN IP4 192.0.2.198
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"""
)

# RFC 4475 §3.1.1.13 (noreason): empty reason phrase.
NOREASON = sip(
    """SIP/2.0 100 \nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

"""
)

# RFC 4475 §3.4.1 (inv2543): an RFC 2543 INVITE, no branch cookie and no Max-Forwards.
INV2543 = sip(
    """INVITE sip:UserB@example.com SIP/2.0
Via: SIP/2.0/UDP iftgw.example.com
From: <sip:+13035551111@ift.client.example.net;user=phone>
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.com
CSeq: 56 INVITE
Content-Type: application/sdp

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.5
s=-
c=IN IP4 192.0.2.5
t=0 0
m=audio 49217 RTP/AVP 0
"""
)

VALID = {
    "wsinv": WSINV, "intmeth": INTMETH, "esc01": ESC01, "escnull": ESCNULL, "esc02": ESC02,
    "lwsdisp": LWSDISP, "longreq": LONGREQ, "dblreq": DBLREQ, "semiuri": SEMIURI,
    "transports": TRANSPORTS, "mpart01": MPART01, "unreason": UNREASON, "noreason": NOREASON,
    "inv2543": INV2543,
}  # fmt: skip

BASIC_INVITE = sip(
    """INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;rport
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
Content-Type: application/sdp
Content-Length: 4

v=0
"""
)
VALID["basic"] = BASIC_INVITE


def _options(
    start: str = "OPTIONS sip:user@example.com SIP/2.0",
    extra: str = "",
    cseq: str = "8 OPTIONS",
    body: str = "",
    length: str | None = "0",
) -> bytes:
    cl = f"Content-Length: {length}\n" if length is not None else ""
    return sip(
        f"""{start}
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
To: sip:user@example.com
From: sip:caller@example.net;tag=3413
Max-Forwards: 70
Call-ID: t.0ha0isndaksdj
CSeq: {cseq}
{extra}{cl}
{body}"""
    )


# --------------------------------------------------------------------------- valid messages


@pytest.mark.parametrize("name", sorted(VALID))
def test_rfc4475_valid_messages_parse(name: str) -> None:
    message = parse_message(VALID[name])
    assert message.headers.get("Call-ID")
    # serialization round trip is stable
    again = parse_message(bytes(message))
    assert again == message


def test_wsinv_details() -> None:
    m = parse_message(WSINV)
    assert isinstance(m, SipRequest)
    assert m.method == "INVITE"
    assert m.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert m.headers.get("to") == "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"
    assert m.headers.get("Max-Forwards") == "0068"
    assert m.headers.get("CSeq") == "9 INVITE"
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    vias = m.headers.get_all("Via")
    assert len(vias) == 3
    assert [parse_via(v).host for v in vias] == ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    assert parse_via(vias[1]).transport == "TCP"
    assert parse_via(vias[2]).branch == "z9hG4bK30239"
    assert (
        m.headers.get(
            "Contact",
        )
        is not None
    )
    assert len(m.body) == 150
    names = [name for name, _ in m.headers.items()]
    assert names[:3] == ["To", "From", "Max-Forwards"]
    assert "NewFangledHeader" in names and "Subject" in names


def test_intmeth_unknown_method_and_odd_characters() -> None:
    m = parse_message(INTMETH)
    assert isinstance(m, SipRequest)
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"
    assert "\x00" in (m.headers.get("To") or "")


def test_esc02_method_is_not_unescaped_and_header_name_is_unknown() -> None:
    m = parse_message(ESC02)
    assert isinstance(m, SipRequest)
    assert m.method == "RE%47IST%45R"
    assert len(m.headers.get_all("Contact")) == 2
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_longreq_keeps_every_via_in_order() -> None:
    m = parse_message(LONGREQ)
    vias = m.headers.get_all("Via")
    assert len(vias) == 34
    assert parse_via(vias[0]).host == "sip33.example.com"
    assert parse_via(vias[-1]).received == "192.0.2.5"
    assert len(m.body) == 150


def test_dblreq_trailing_octets_are_ignored() -> None:
    m = parse_message(DBLREQ)
    assert isinstance(m, SipRequest)
    assert m.method == "REGISTER"
    assert m.body == b""


def test_semiuri_and_folded_accept() -> None:
    m = parse_message(SEMIURI)
    assert m.headers.get_all("Accept")[-1] == "message/sipfrag"
    assert len(m.headers.get_all("Accept")) == 6


def test_transports_unknown_transport() -> None:
    m = parse_message(TRANSPORTS)
    assert [parse_via(v).transport for v in m.headers.get_all("Via")] == [
        "UDP",
        "SCTP",
        "TLS",
        "UNKNOWN",
        "TCP",
    ]


def test_mpart01_binary_body_exact() -> None:
    m = parse_message(MPART01)
    assert m.body == _MPART_BODY


def test_unreason_and_noreason_responses() -> None:
    r = parse_message(UNREASON)
    assert isinstance(r, SipResponse)
    assert r.status == 200 and r.reason.startswith("= 2**3 * 5**2 \u043d\u043e")
    r = parse_message(NOREASON)
    assert isinstance(r, SipResponse)
    assert (r.status, r.reason) == (100, "")


def test_inv2543_no_branch_no_max_forwards() -> None:
    m = parse_message(INV2543)
    via = parse_via(m.headers.get("Via") or "")
    assert via.branch is None
    # No Content-Length on a datagram: the body is the rest of the datagram (RFC 3261 §18.3).
    assert m.body.startswith(b"v=0") and m.headers.get("Content-Length") == str(len(m.body))


def test_bare_lf_line_endings() -> None:
    m = parse_message(BASIC_INVITE.replace(b"\r\n", b"\n"))
    assert isinstance(m, SipRequest)
    assert m.body == b"v=0\n"[:4]


def test_leading_crlf_before_start_line_is_ignored() -> None:
    assert isinstance(parse_message(b"\r\n\r\n" + BASIC_INVITE), SipRequest)


def test_compact_forms_are_expanded() -> None:
    raw = sip(
        """INVITE sip:a@b SIP/2.0
v: SIP/2.0/UDP h;branch=z9hG4bK1
i: abc
CSeq: 1 INVITE
f: <sip:x@y>;tag=1
t: <sip:a@b>
m: <sip:x@h>
c: application/sdp
k: timer
s: hi
e: gzip
o: refer
r: <sip:c@d>
b: <sip:x@y>
x: 1800
u: talk
l: 0

"""
    )
    m = parse_message(raw)
    names = [n for n, _ in m.headers.items()]
    assert names == [
        "Via", "Call-ID", "CSeq", "From", "To", "Contact", "Content-Type", "Supported", "Subject",
        "Content-Encoding", "Event", "Refer-To", "Referred-By", "Session-Expires", "Allow-Events",
        "Content-Length",
    ]  # fmt: skip
    assert bytes(m).startswith(
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: abc\r\n"
    )


def test_ipv6_in_via_and_uri() -> None:
    raw = _options(start="OPTIONS sip:user@[2001:db8::10]:5070;transport=udp SIP/2.0").replace(
        b"Via: SIP/2.0/UDP 192.0.2.1;", b"Via: SIP/2.0/UDP [2001:db8::1]:5062;"
    )
    m = parse_message(raw)
    via = parse_via(m.headers.get("Via") or "")
    assert (via.host, via.port) == ("2001:db8::1", 5062)
    assert str(via) == "SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bKkdjuw"


def test_body_longer_than_content_length_is_truncated() -> None:
    m = parse_message(_options(body="v=0\r\nextra", length="3"))
    assert m.body == b"v=0"


def test_header_order_and_unknown_headers_preserved() -> None:
    m = parse_message(_options(extra="X-B: 2\nX-A: 1\nx-b: 3\n"))
    assert [v for n, v in m.headers.items() if n.lower() == "x-b"] == ["2", "3"]
    assert m.headers.get_all("X-B") == ["2", "3"]


# --------------------------------------------------------------------------- invalid messages


def _error(data: bytes) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    return info.value


def test_badinv01_extraneous_separators_in_via() -> None:
    # RFC 4475 §3.1.2.1: "Via: SIP/2.0/UDP 192.0.2.15;;,;,," is not a via-parm list; 400.
    err = _error(
        _options(start="INVITE sip:user@example.com SIP/2.0", cseq="8 INVITE").replace(
            b"z9hG4bKkdjuw", b"z9hG4bKkdjuw;;,;,,"
        )
    )
    assert err.status == 400
    assert err.partial is not None  # enough was read to answer


def test_clerr_content_length_larger_than_datagram() -> None:
    # RFC 4475 §3.1.2.2: on UDP the body is short of Content-Length -> 400.
    err = _error(_options(body="v=0\r\n", length="9999"))
    assert err.status == 400 and "Content-Length" in err.reason
    assert err.partial is not None


def test_ncl_negative_content_length() -> None:
    # RFC 4475 §3.1.2.3
    err = _error(_options(length="-999"))
    assert err.status == 400 and err.partial is not None


def test_scalar02_overlarge_scalars() -> None:
    # RFC 4475 §3.1.2.4: CSeq beyond 2**31 and Max-Forwards beyond 255 -> 400.
    assert _error(_options(cseq="36893488147419103232 OPTIONS")).status == 400
    err = _error(_options(extra="Max-Forwards: 300\n").replace(b"Max-Forwards: 70\r\n", b""))
    assert err.status == 400


def test_quotbal_unterminated_quoted_display_name() -> None:
    # RFC 4475 §3.1.2.6
    err = _error(
        _options().replace(b"To: sip:user@example.com", b'To: "Mr. J. User <sip:j.user@example.com>')
    )
    assert err.status == 400


def test_ltgtruri_request_uri_in_angle_brackets() -> None:
    # RFC 4475 §3.1.2.7: "<sip:...>" is not a URI -> 400 (not 416).
    err = _error(_options(start="INVITE <sip:user@example.com> SIP/2.0", cseq="8 INVITE"))
    assert err.status == 400
    assert isinstance(err.partial, SipRequest)


def test_lwsruri_and_lwsstart_request_line_spacing() -> None:
    # RFC 4475 §3.1.2.8 / §3.1.2.9: LWS inside the Request-URI or several SPs between elements.
    assert _error(_options(start="OPTIONS sip:user@example.com; lr SIP/2.0")).status == 400
    assert _error(_options(start="OPTIONS  sip:user@example.com  SIP/2.0")).status == 400


def test_trws_trailing_space_in_request_line_is_tolerated() -> None:
    # RFC 4475 §3.1.2.10 allows robust elements to ignore trailing SP; we do.
    m = parse_message(_options(start="OPTIONS sip:user@example.com SIP/2.0   "))
    assert isinstance(m, SipRequest) and m.uri == "sip:user@example.com"


def test_escruri_headers_in_request_uri() -> None:
    # RFC 4475 §3.1.2.11: escaped headers are not allowed in a Request-URI (RFC 3261 §19.1.1) -> 400.
    err = _error(
        _options(start="INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0", cseq="8 INVITE")
    )
    assert err.status == 400 and err.partial is not None


def test_baddate_is_accepted() -> None:
    # RFC 4475 §3.1.2.12: a UA that does not use Date may accept the request; our UA never reads Date.
    m = parse_message(_options(extra="Date: Fri, 01 Jan 2010 16:00:00 EST\n"))
    assert m.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def test_regbadct_uri_with_headers_outside_angle_brackets() -> None:
    # RFC 4475 §3.1.2.13: the Contact URI has "?", so it must be a name-addr -> 400.
    err = _error(_options(extra="Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\n"))
    assert err.status == 400


def test_badaspec_and_baddn_are_tolerated() -> None:
    # RFC 4475 §3.1.2.14/15 let robust elements accept LWS inside <...> and unquoted odd display
    # names; a UA loses nothing by doing so, and callers from sloppy gateways still get through.
    m = parse_message(
        _options()
        .replace(b"To: sip:user@example.com", b'To: "Watson, Thomas" < sip:t.watson@example.org >')
        .replace(
            b"From: sip:caller@example.net;tag=3413",
            b"From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
        )
    )
    assert isinstance(m, SipRequest)


def test_badvers_is_505_with_partial() -> None:
    # RFC 4475 §3.1.2.16
    err = _error(_options(start="OPTIONS sip:t.watson@example.org SIP/7.0"))
    assert err.status == 505
    assert err.partial is not None
    assert make_response(err.partial, err.status).status == 505


def test_mismatch01_and_02_cseq_method() -> None:
    # RFC 4475 §3.1.2.17/18: a CSeq method that differs from the request method -> 400.
    assert _error(_options(cseq="8 INVITE")).status == 400
    err = _error(_options(start="NEWMETHOD sip:user@example.com SIP/2.0", cseq="8 INVITE"))
    assert err.status == 400 and "CSeq" in err.reason


def test_bigcode_response() -> None:
    # RFC 4475 §3.1.2.19: a status code that is not three digits; nothing to answer -> no partial.
    err = _error(sip("SIP/2.0 4294967301 better not break the receiver\nVia: SIP/2.0/UDP h\n\n"))
    assert err.status == 400 and err.partial is None


def test_unksm_unknown_request_uri_scheme_is_416() -> None:
    # RFC 4475 §3.3.4/§3.3.5
    err = _error(_options(start="OPTIONS nobodyknowsthisscheme:totallyopaquecontent SIP/2.0"))
    assert err.status == 416 and err.partial is not None
    assert _error(_options(start="OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0")).status == 416


def test_unksm2_unknown_scheme_in_to_and_from_is_accepted() -> None:
    # RFC 4475 §3.3.6: unknown schemes outside the Request-URI are not a reason to refuse.
    m = parse_message(
        _options()
        .replace(b"To: sip:user@example.com", b"To: isbn:2983792873")
        .replace(b"From: sip:caller@example.net;tag=3413", b"From: <http://www.example.com>;tag=3ew2")
    )
    assert isinstance(m, SipRequest)


def test_multi01_repeated_singleton_headers() -> None:
    # RFC 4475 §3.3.11: two Call-ID / CSeq / From / To headers -> 400.
    err = _error(_options(extra="Call-ID: other\n"))
    assert err.status == 400 and "Call-ID" in err.reason


def test_conflicting_content_lengths() -> None:
    assert _error(_options(extra="Content-Length: 5\n", body="hello")).status == 400


@pytest.mark.parametrize("header", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header_is_named(header: str) -> None:
    raw = _options()
    lines = [line for line in raw.split(b"\r\n") if not line.startswith(header.encode() + b":")]
    err = _error(b"\r\n".join(lines))
    assert err.status == 400 and header in err.reason
    assert err.partial is None


def test_garbage_start_line() -> None:
    err = _error(b"HELLO\r\n\r\n")
    assert err.status == 400 and err.partial is None
    assert _error(b"").status == 400


def test_too_large_is_513() -> None:
    assert _error(_options(extra=f"X-Pad: {'a' * MAX_MESSAGE_SIZE}\n")).status == 513


def test_invalid_utf8_is_400() -> None:
    assert _error(_options(extra="X-Bad: \xff\n").replace(b"\xc3\xbf", b"\xff")).status == 400


def test_bad_cseq_number() -> None:
    assert _error(_options(cseq="x OPTIONS")).status == 400
    assert _error(_options(cseq="8")).status == 400


def test_malformed_header_line_keeps_partial() -> None:
    err = _error(_options(extra="this is not a header\n"))
    assert err.status == 400 and err.partial is not None


# --------------------------------------------------------------------------- API pieces


def test_headers_api() -> None:
    h = Headers([("via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b"), ("v", "SIP/2.0/UDP c")])
    assert h.get("Via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert h.get_all("VIA") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    h.add("x-custom", "1")
    h.add("Contact", '"Doe, J" <sip:j@h>, <sip:k@h>')
    assert h.get_all("m") == ['"Doe, J" <sip:j@h>', "<sip:k@h>"]
    h.set("call-id", "abc")
    h.set("via", "SIP/2.0/UDP z")
    assert h.get_all("Via") == ["SIP/2.0/UDP z"]
    assert h.items()[0] == ("Via", "SIP/2.0/UDP z")
    assert h.items()[-1] == ("Call-ID", "abc")
    c = h.copy()
    c.remove("x-custom")
    assert "x-custom" in h and "X-Custom" not in c
    assert h.get("nothing") is None and h.get_all("nothing") == []
    assert Headers([("www-authenticate", "Digest x")]).items() == [("WWW-Authenticate", "Digest x")]


def test_serialization_sets_content_length_and_crlf() -> None:
    req = SipRequest("MESSAGE", "sip:a@b", Headers([("Content-Length", "99"), ("cseq", "1 MESSAGE")]), b"hi")
    assert bytes(req) == b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 2\r\nCSeq: 1 MESSAGE\r\n\r\nhi"
    resp = SipResponse(486, "Busy Here", Headers())
    assert bytes(resp) == b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n\r\n"


def test_make_response_copies_rfc3261_headers() -> None:
    req = parse_message(WSINV)
    assert isinstance(req, SipRequest)
    resp = make_response(req, 180, to_tag="newtag")
    assert resp.reason == "Ringing"
    # To already has a tag: it is kept, not replaced
    assert resp.headers.get("To") == req.headers.get("To")
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    assert [n for n, _ in resp.headers.items()] == ["Via", "Via", "From", "To", "Call-ID", "CSeq"]
    basic = parse_message(BASIC_INVITE)
    assert isinstance(basic, SipRequest)
    ok = make_response(basic, 200, to_tag="t1")
    assert ok.headers.get("To") == "Bob <sip:bob@biloxi.example.com>;tag=t1"
    assert make_response(basic, 100).headers.get("To") == "Bob <sip:bob@biloxi.example.com>"
    assert make_response(basic, 499).reason == "Unknown"
    parsed = parse_message(bytes(ok))
    assert isinstance(parsed, SipResponse) and parsed.status == 200


def test_parse_via_and_cseq() -> None:
    via = parse_via("SIP / 2.0 / udp  host.example.com : 5070 ; branch = z9hG4bKx ; rport ; received=1.2.3.4")
    assert (via.transport, via.host, via.port, via.branch, via.rport) == (
        "UDP",
        "host.example.com",
        5070,
        "z9hG4bKx",
        None,
    )
    assert via.params["rport"] is None and via.received == "1.2.3.4"
    assert parse_via("SIP/2.0/UDP h;rport=5062").rport == 5062
    for bad in [
        "",
        "SIP/2.0 h",
        "SIP/3.0/UDP h",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP h;",
        "SIP/2.0/UDP h;a=",
        "SIP/2.0/UDP h:99999",
        "SIP/2.0/UDP h x",
        "SIP/2.0/UDP a, SIP/2.0/UDP b",
    ]:
        with pytest.raises(SipParseError):
            parse_via(bad)
    assert parse_cseq("0009   INVITE") == (9, "INVITE")
    for bad in ["", "1", "a INVITE", "1 INVITE x", "2147483648 INVITE", "-1 INVITE", "1 INV@TE"]:
        with pytest.raises(SipParseError):
            parse_cseq(bad)


def test_random_identifiers() -> None:
    assert new_branch().startswith("z9hG4bK") and new_branch() != new_branch()
    assert len(new_tag()) >= 8 and new_tag() != new_tag()
    assert new_call_id("192.0.2.1").endswith("@192.0.2.1")
