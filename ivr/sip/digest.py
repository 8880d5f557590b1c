"""HTTP Digest authentication as SIP uses it (RFC 3261 §22.4, RFC 2617, RFC 7616, RFC 8760).

Client side: ``parse_challenge`` reads a WWW-Authenticate / Proxy-Authenticate value and
``build_authorization`` answers it for one request. Server side: ``verify`` checks an
Authorization value against the password we hold. MD5, SHA-256 and SHA-512-256 (RFC 8760), their
``-sess`` variants, qop ``auth`` / ``auth-int`` and the legacy no-qop form of RFC 2069 are handled.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ivr.sip.lexing import quote_string, read_quoted


class DigestError(ValueError):
    """A challenge or credentials we cannot parse or answer (unknown algorithm or qop)."""


def _hasher(name: str) -> Callable[[str], str]:
    def digest(text: str) -> str:
        return hashlib.new(name, text.encode("utf-8")).hexdigest()

    return digest


_ALGORITHMS: dict[str, Callable[[str], str]] = {"MD5": _hasher("md5"), "SHA-256": _hasher("sha256")}
if "sha512_256" in hashlib.algorithms_available:  # pragma: no branch - depends on the OpenSSL build
    _ALGORITHMS["SHA-512-256"] = _hasher("sha512_256")
# RFC 8760 §2.4: when several challenges are offered, prefer the strongest we support.
_PREFERENCE = ("SHA-512-256", "SHA-256", "MD5")


def parse_auth_params(text: str) -> dict[str, str]:
    """``name=token`` / ``name="quoted"`` pairs separated by commas (RFC 7235 §2.1); names lower-cased."""
    params: dict[str, str] = {}
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise DigestError("auth-param without '='")
        name = text[i:eq].strip().lower()
        if not name or " " in name:
            raise DigestError("bad auth-param name")
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            quoted = read_quoted(text, i)
            if quoted is None:
                raise DigestError("unterminated quoted auth-param")
            value, i = quoted
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            value = text[i:end].strip()
            i = end
        params[name] = value
    return params


@dataclass
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: list[str] = field(default_factory=list)
    opaque: str | None = None
    stale: bool = False
    params: dict[str, str] = field(default_factory=dict)

    @property
    def supported(self) -> bool:
        return _base_algorithm(self.algorithm) in _ALGORITHMS


def _base_algorithm(algorithm: str) -> str:
    upper = algorithm.upper()
    return upper[:-5] if upper.endswith("-SESS") else upper


def parse_challenge(value: str) -> Challenge:
    """Parse ``Digest realm="...", nonce="...", ...``; other schemes raise DigestError."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"unsupported scheme {scheme!r}")
    params = parse_auth_params(rest)
    if "realm" not in params or "nonce" not in params:
        raise DigestError("challenge without realm or nonce")
    qop = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=params.get("algorithm", "MD5"),
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
        params=params,
    )


def select_challenge(values: Iterable[str]) -> Challenge | None:
    """Among several challenge header values, the one with the strongest supported algorithm."""
    best: Challenge | None = None
    for value in values:
        try:
            challenge = parse_challenge(value)
        except DigestError:
            continue
        if not challenge.supported:
            continue
        rank = _PREFERENCE.index(_base_algorithm(challenge.algorithm))
        if best is None or rank < _PREFERENCE.index(_base_algorithm(best.algorithm)):
            best = challenge
    return best


def compute_response(
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    cnonce: str | None = None,
    nc: str | None = None,
    body: bytes = b"",
) -> str:
    """The request-digest (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1)."""
    base = _base_algorithm(algorithm)
    h = _ALGORITHMS.get(base)
    if h is None:
        raise DigestError(f"unsupported algorithm {algorithm!r}")
    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        if cnonce is None:
            raise DigestError("-sess algorithm needs a cnonce")
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        body_hash = hashlib.new(_HASHLIB_NAMES[base], body).hexdigest()
        ha2 = h(f"{method}:{uri}:{body_hash}")
    else:
        ha2 = h(f"{method}:{uri}")
    if qop is None:
        # RFC 2069 compatibility: no qop, no cnonce, no nonce count.
        return h(f"{ha1}:{nonce}:{ha2}")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


_HASHLIB_NAMES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}


def build_authorization(
    challenge: Challenge,
    method: str,
    uri: str,
    username: str,
    password: str,
    *,
    cnonce: str | None = None,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The Authorization / Proxy-Authorization value answering ``challenge`` for one request.

    ``nc`` counts the requests made with this nonce (RFC 2617 §3.2.2); pass the next value when
    reusing a nonce. ``cnonce`` is random unless given (tests).
    """
    qop: str | None = None
    if challenge.qop:
        if "auth" in challenge.qop:
            qop = "auth"
        elif "auth-int" in challenge.qop:
            qop = "auth-int"
        else:
            raise DigestError(f"unsupported qop {challenge.qop!r}")
    sess = challenge.algorithm.upper().endswith("-SESS")
    if (qop or sess) and cnonce is None:
        cnonce = secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    response = compute_response(
        challenge.algorithm,
        username,
        challenge.realm,
        password,
        challenge.nonce,
        method,
        uri,
        qop,
        cnonce,
        nc_text if qop else None,
        body,
    )
    parts = [
        f"username={quote_string(username)}",
        f"realm={quote_string(challenge.realm)}",
        f"nonce={quote_string(challenge.nonce)}",
        f"uri={quote_string(uri)}",
        f"response={quote_string(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if cnonce is not None and (qop or sess):
        parts.append(f"cnonce={quote_string(cnonce)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={quote_string(challenge.opaque)}")
    if qop:
        # RFC 2617 §3.2.2: qop and nc are sent unquoted.
        parts.append(f"qop={qop}")
        parts.append(f"nc={nc_text}")
    return "Digest " + ", ".join(parts)


def build_challenge(
    realm: str,
    nonce: str,
    algorithm: str = "MD5",
    qop: str | None = "auth",
    opaque: str | None = None,
    stale: bool = False,
) -> str:
    """A WWW-Authenticate / Proxy-Authenticate value (server side)."""
    parts = [f"realm={quote_string(realm)}", f"nonce={quote_string(nonce)}", f"algorithm={algorithm}"]
    if qop:
        parts.append(f"qop={quote_string(qop)}")
    if opaque is not None:
        parts.append(f"opaque={quote_string(opaque)}")
    if stale:
        parts.append("stale=TRUE")
    return "Digest " + ", ".join(parts)


def verify(
    authorization_header: str,
    method: str,
    password: str,
    realm: str,
    nonce: str,
    *,
    uri: str | None = None,
    body: bytes = b"",
) -> bool:
    """True when the credentials answer our (realm, nonce) challenge with ``password``.

    Nonce freshness and nc replay tracking belong to the caller, who issued the nonce. When ``uri``
    is given, the digest-uri must match it (RFC 2617 §3.2.2.5).
    """
    scheme, _, rest = authorization_header.strip().partition(" ")
    if scheme.lower() != "digest":
        return False
    try:
        params = parse_auth_params(rest)
    except DigestError:
        return False
    needed = ("username", "realm", "nonce", "uri", "response")
    if any(name not in params for name in needed):
        return False
    if params["realm"] != realm or not hmac.compare_digest(params["nonce"], nonce):
        return False
    if uri is not None and params["uri"] != uri:
        return False
    qop = params.get("qop")
    if qop is not None and ("cnonce" not in params or "nc" not in params):
        return False
    try:
        expected = compute_response(
            params.get("algorithm", "MD5"),
            params["username"],
            realm,
            password,
            nonce,
            method,
            params["uri"],
            qop,
            params.get("cnonce"),
            params.get("nc"),
            body,
        )
    except DigestError:
        return False
    return hmac.compare_digest(expected, params["response"].lower())
