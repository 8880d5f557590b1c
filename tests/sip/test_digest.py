"""Digest authentication (RFC 2617, RFC 7616, RFC 8760) with the RFCs' own worked examples."""

from __future__ import annotations

import pytest

from ivr.sip.digest import (
    Challenge,
    DigestError,
    build_authorization,
    build_challenge,
    compute_response,
    parse_auth_params,
    parse_challenge,
    select_challenge,
    verify,
)

RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_rfc2617_example() -> None:
    c = parse_challenge(RFC2617_CHALLENGE)
    assert (c.realm, c.algorithm, c.qop, c.opaque) == (
        "testrealm@host.com",
        "MD5",
        ["auth", "auth-int"],
        "5ccc069c403ebaf9f0171e9517f40e41",
    )
    value = build_authorization(c, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", cnonce="0a4f113b")
    params = parse_auth_params(value.removeprefix("Digest "))
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["nc"] == "00000001" and params["qop"] == "auth"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert "qop=auth," in value and "nc=00000001" in value  # unquoted (RFC 2617 §3.2.2)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, expected: str) -> None:
    c = parse_challenge(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    value = build_authorization(
        c,
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle of Life",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert parse_auth_params(value[7:])["response"] == expected


def test_legacy_no_qop() -> None:
    c = Challenge(realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093")
    value = build_authorization(c, "GET", "/dir/index.html", "Mufasa", "CircleOfLife")
    params = parse_auth_params(value[7:])
    assert params["response"] == "1949323746fe6a43ef61f9606e7febea"  # RFC 2069 §2.4
    assert "cnonce" not in params and "nc" not in params and "qop" not in params


def test_sip_register_round_trip_with_verify() -> None:
    challenge = build_challenge("pbx.example.com", "abc123", algorithm="SHA-256", opaque="o1")
    c = parse_challenge(challenge)
    auth = build_authorization(c, "REGISTER", "sip:pbx.example.com", "ivr", "s3cret", nc=3)
    assert verify(auth, "REGISTER", "s3cret", "pbx.example.com", "abc123", uri="sip:pbx.example.com")
    assert not verify(auth, "REGISTER", "wrong", "pbx.example.com", "abc123")
    assert not verify(auth, "INVITE", "s3cret", "pbx.example.com", "abc123")
    assert not verify(auth, "REGISTER", "s3cret", "other", "abc123")
    assert not verify(auth, "REGISTER", "s3cret", "pbx.example.com", "stale")
    assert not verify(auth, "REGISTER", "s3cret", "pbx.example.com", "abc123", uri="sip:elsewhere")
    assert not verify("Basic dXNlcjpwYXNz", "REGISTER", "s3cret", "pbx.example.com", "abc123")
    assert not verify('Digest username="x', "REGISTER", "s3cret", "pbx.example.com", "abc123")
    assert not verify('Digest username="x"', "REGISTER", "s3cret", "pbx.example.com", "abc123")


@pytest.mark.parametrize("algorithm", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"])
@pytest.mark.parametrize("qop", [None, "auth", "auth-int"])
def test_every_variant_verifies(algorithm: str, qop: str | None) -> None:
    c = parse_challenge(build_challenge("r", "n", algorithm=algorithm, qop=qop))
    auth = build_authorization(c, "INVITE", "sip:a@b", "u", "p", body=b"v=0\r\n")
    assert verify(auth, "INVITE", "p", "r", "n", body=b"v=0\r\n")
    if qop == "auth-int":
        assert not verify(auth, "INVITE", "p", "r", "n", body=b"other")


def test_select_strongest_challenge() -> None:
    chosen = select_challenge(
        [
            'Digest realm="r", nonce="1", algorithm=MD5',
            'Digest realm="r", nonce="2", algorithm=SHA-256',
            'Digest realm="r", nonce="3", algorithm=UNKNOWN-HASH',
            "Basic realm=x",
        ]
    )
    assert chosen is not None and chosen.nonce == "2"
    assert select_challenge(["Basic realm=x"]) is None


def test_challenge_details_and_errors() -> None:
    c = parse_challenge('digest REALM="a\\"b", nonce=xyz, stale=TRUE, algorithm=MD5')
    assert c.realm == 'a"b' and c.nonce == "xyz" and c.stale and c.supported
    for bad in ["Basic realm=x", 'Digest realm="x"', 'Digest realm="x, nonce="y"', "Digest realm"]:
        with pytest.raises(DigestError):
            parse_challenge(bad)
    with pytest.raises(DigestError):
        build_authorization(Challenge("r", "n", qop=["auth-conf"]), "GET", "/", "u", "p")
    with pytest.raises(DigestError):
        compute_response("SHA-1", "u", "r", "p", "n", "GET", "/")
    assert not Challenge("r", "n", algorithm="SHA-1").supported
