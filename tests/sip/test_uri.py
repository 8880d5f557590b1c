"""SIP/SIPS/tel URIs and name-addr values (RFC 3261 §19.1, §20.10, §25)."""

from __future__ import annotations

import pytest

from ivr.sip.errors import SipParseError
from ivr.sip.uri import NameAddr, SipUri, parse_name_addr, parse_uri


def test_full_sip_uri() -> None:
    u = parse_uri(
        "sip:alice:secret@Atlanta.Example.com:5070;transport=TCP;lr?subject=project%20x&priority=urgent"
    )
    assert (u.scheme, u.user, u.password, u.host, u.port) == (
        "sip",
        "alice",
        "secret",
        "atlanta.example.com",
        5070,
    )
    assert u.params == {"transport": "TCP", "lr": None}
    assert u.headers == {"subject": "project x", "priority": "urgent"}
    assert u.transport == "TCP"
    assert (
        str(u)
        == "sip:alice:secret@atlanta.example.com:5070;transport=TCP;lr?subject=project%20x&priority=urgent"
    )


def test_sips_and_host_only() -> None:
    u = parse_uri("SIPS:example.com")
    assert (u.scheme, u.user, u.host, u.port) == ("sips", None, "example.com", None)
    assert str(u) == "sips:example.com"


def test_ipv6_hosts() -> None:
    u = parse_uri("sip:[2001:db8::1]:5060;maddr=[2001:db8::2]")
    assert (u.host, u.port) == ("2001:db8::1", 5060)
    assert str(u) == "sip:[2001:db8::1]:5060;maddr=[2001:db8::2]"
    assert parse_uri("sip:bob@[::1]").host == "::1"
    for bad in ["sip:[2001:db8::1", "sip:[zz::1]", "sip:[2001:db8::1]x", "sip:[]"]:
        with pytest.raises(SipParseError):
            parse_uri(bad)


def test_escapes_decoded_and_reencoded() -> None:
    u = parse_uri("sip:sips%3Auser%40example.com@example.net")
    assert u.user == "sips:user@example.com"
    assert str(u) == "sip:sips%3Auser%40example.com@example.net"
    assert parse_uri("sip:%75se%72@example.com") == parse_uri("sip:user@example.com")
    c = parse_uri("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert c.user == "caller" and c.params == {"lr": None, "name": "value%41"}
    assert parse_uri("sip:null-%00-null@example.com").user == "null-\x00-null"
    assert parse_uri("sip:I%20have%20spaces@example.net").user == "I have spaces"
    assert str(parse_uri("sip:I%20have%20spaces@example.net")) == "sip:I%20have%20spaces@example.net"


def test_user_part_with_semicolons_and_question_marks() -> None:
    u = parse_uri("sip:user;par=u%40example.net@example.com")
    assert u.user == "user;par=u@example.net" and u.host == "example.com" and u.params == {}
    odd = (
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
        "(doesn't-it)@example.com"
    )
    u = parse_uri(odd)
    assert u.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert u.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert parse_uri(str(u)) == u


def test_tel_uri() -> None:
    u = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert (u.scheme, u.user, u.host, u.params) == (
        "tel",
        "+1-201-555-0123",
        "",
        {"phone-context": "example.com"},
    )
    assert str(u) == "tel:+1-201-555-0123;phone-context=example.com"


@pytest.mark.parametrize(
    "text", ["http://example.com", "mailto:a@b", "nobodyknowsthisscheme:x", "soap.beep://h:1"]
)
def test_unsupported_scheme_is_416(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 416


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip",
        "<sip:a@b>",
        "sip:",
        "sip:a@",
        "sip:@h",
        "sip:a b@h",
        "sip:h:port",
        "sip:h:70000",
        "sip:a@h;=x",
        "sip:a%zz@h",
        "sip:a%4@h",
        "sip:a@h?x",
        "tel:",
        "tel:xyz",
        "1sip:a@b",
        "sip:a@h;;",
    ],
)
def test_malformed_uri_is_400(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 400


def test_uri_is_hashable_and_frozen() -> None:
    u = parse_uri("sip:a@b;lr")
    assert hash(u) == hash(parse_uri("sip:a@b;lr"))
    with pytest.raises(AttributeError):
        u.host = "c"  # type: ignore[misc]


def test_name_addr_forms() -> None:
    a = parse_name_addr(
        '"J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\n  ;\n  tag = 98asjd8'.replace("\n", "")
    )
    assert a.display == 'J Rosenberg \\"'
    assert a.tag == "98asjd8"
    assert str(a) == '"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8'
    b = parse_name_addr("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n")
    assert b.display is None and b.uri.host == "chair-dnrc.example.com" and b.tag == "1918181833n"
    c = parse_name_addr("caller<sip:caller@example.com>;tag=323")
    assert c.display == "caller" and c.tag == "323"
    d = parse_name_addr(
        '"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33'
    )
    assert d.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    e = parse_name_addr("<sip:a@b;lr>;expires=60")
    assert e.uri.params == {"lr": None} and e.params == {"expires": "60"}
    f = parse_name_addr("sip:a@b;lr")  # addr-spec: ";lr" is a header parameter (RFC 3261 §20.10)
    assert f.uri.params == {} and f.params == {"lr": None}


def test_name_addr_with_tag() -> None:
    a = parse_name_addr("Bob <sip:bob@biloxi.example.com>")
    b = a.with_tag("abc")
    assert a.tag is None and b.tag == "abc"
    assert str(b) == '"Bob" <sip:bob@biloxi.example.com>;tag=abc'
    assert parse_name_addr(str(b)) == b
    assert isinstance(b, NameAddr) and isinstance(b.uri, SipUri)


def test_name_addr_quoted_param_value() -> None:
    a = parse_name_addr("token1~` token2 <sip:m@example.com>;fromParam''~+*_!.-%=\"a;b\";tag=_t")
    assert a.params["fromparam''~+*_!.-%"] == '"a;b"' and a.tag == "_t"


def test_name_addr_robustness() -> None:
    # RFC 4475 §3.1.2.14/15: spaces inside <> and unquoted display names with commas are tolerated.
    assert parse_name_addr('"Watson, Thomas" < sip:t.watson@example.org >').uri.user == "t.watson"
    assert parse_name_addr("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").display == "Bell, Alexander"


@pytest.mark.parametrize(
    "text",
    [
        '"Mr. J. User <sip:j.user@example.com>',
        "<sip:a@b",
        "sip:a@b>",
        "sip:user@example.com?Route=%3Csip:x%3E",
        '"x" sip:a@b',
        "<sip:a@b> junk",
        "<sip:a@b>;",
        "<sip:a@b>;tag=",
        '"x\\',
        "<sip:a@b>;a b=c",
    ],
)
def test_name_addr_rejects(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_name_addr(text)
    assert info.value.status == 400
