"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966) and name-addr values (RFC 3261 §20.10).

The parser is split-based, not a character-by-character grammar: it runs on every request and on
the From/To/Contact of every message, so it must be cheap. It is strict where a wrong guess would
route a call somewhere else (scheme, host, port, unterminated quotes, a bare URI with headers) and
lenient where RFC 4475 asks elements to be robust (spaces inside <...>, unquoted odd display
names).

Escaped characters are decoded on parse and re-escaped on output, so ``sip:%75ser@h`` and
``sip:user@h`` compare equal, as RFC 3261 §19.1.4 requires. IPv6 hosts are stored without their
brackets, ready to be handed to a socket; ``__str__`` puts the brackets back.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote

from ivr.sip.errors import SipParseError
from ivr.sip.lexing import WS, generic_params, quote_string, read_quoted, split_quoted

SUPPORTED_SCHEMES = frozenset({"sip", "sips", "tel"})

_ALNUM = string.ascii_letters + string.digits
# RFC 3261 §25.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_CHARS = frozenset(_ALNUM + "+-.")
_MARK = "-_.!~*'()"
# user = 1*( unreserved / escaped / user-unreserved ); password adds "&=+$," but no ";?/".
_USER_SAFE = _MARK + "&=+$,;?/"
_USER_CHARS = frozenset(_ALNUM + _USER_SAFE + "%")
_PASSWORD_SAFE = _MARK + "&=+$,"
_PASSWORD_CHARS = frozenset(_ALNUM + _PASSWORD_SAFE + "%")
# param-unreserved and hnv-unreserved (§25.1)
_PARAM_SAFE = _MARK + "[]/:&+$"
_PARAM_CHARS = frozenset(_ALNUM + _PARAM_SAFE + "%")
_HNV_SAFE = _MARK + "[]/?:+$"
_HNV_CHARS = frozenset(_ALNUM + _HNV_SAFE + "%")
# Host names: alphanumerics, "-" and "."; "_" is not in the ABNF but appears in the wild (SRV-like
# labels) and is harmless to accept.
_HOST_CHARS = frozenset(_ALNUM + "-._")
_IPV6_CHARS = frozenset(string.hexdigits + ":.")
_TEL_CHARS = frozenset(string.hexdigits + "*#+-.()pPwW")
_HEX = frozenset(string.hexdigits)


def _bad(reason: str) -> SipParseError:
    return SipParseError(400, reason)


def _unescape(text: str, allowed: frozenset[str], what: str) -> str:
    if not allowed.issuperset(text):
        raise _bad(f"invalid character in URI {what}")
    if "%" not in text:
        return text
    # Every "%" must start a %HH escape (RFC 3261 §25.1 escaped); unquote() alone is lenient.
    i = text.find("%")
    while i >= 0:
        if i + 3 > len(text) or text[i + 1] not in _HEX or text[i + 2] not in _HEX:
            raise _bad(f"invalid escape in URI {what}")
        i = text.find("%", i + 3)
    # surrogateescape keeps non-UTF-8 octets so that quoting them again restores the same bytes.
    return unquote(text, errors="surrogateescape")


def _escape(text: str, safe: str) -> str:
    return quote(text, safe=safe, errors="surrogateescape")


def parse_host_port(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (hostname, IPv4 or bracketed IPv6); the host comes back without brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise _bad("unterminated IPv6 reference")
        host = text[1:end]
        if not host or not _IPV6_CHARS.issuperset(host) or ":" not in host:
            raise _bad("invalid IPv6 address")
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _bad("junk after IPv6 reference")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_s = text.partition(":")
        port_text = port_text_s if colon else None
        if not host or not _HOST_CHARS.issuperset(host):
            raise _bad("invalid host")
        host = host.lower()
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or len(port_text) > 5 or not port_text.isascii():
            raise _bad("invalid port")
        port = int(port_text)
        if port > 65535:
            raise _bad("port out of range")
    return host, port


def format_host(host: str) -> str:
    """A host ready for a URI or Via: IPv6 literals get their brackets back (RFC 3261 §19.1.1)."""
    return f"[{host}]" if ":" in host else host


def _parse_params(text: str, allowed: frozenset[str]) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not name:
            raise _bad("empty URI parameter")
        key = _unescape(name, allowed, "parameter").lower()
        params[key] = _unescape(value, allowed, "parameter") if eq else None
    return params


@dataclass(frozen=True)
class SipUri:
    """A sip:, sips: or tel: URI. For tel:, ``user`` holds the number and ``host`` is empty."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    password: str | None = None

    def __str__(self) -> str:
        params = "".join(
            f";{_escape(k, _PARAM_SAFE)}" + ("" if v is None else "=" + _escape(v, _PARAM_SAFE))
            for k, v in self.params.items()
        )
        if self.scheme == "tel":
            return f"tel:{self.user or ''}{params}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(_escape(self.user, _USER_SAFE))
            if self.password is not None:
                out.append(":" + _escape(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(format_host(self.host))
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(params)
        if self.headers:
            pairs = (f"{_escape(k, _HNV_SAFE)}={_escape(v, _HNV_SAFE)}" for k, v in self.headers.items())
            out.append("?" + "&".join(pairs))
        return "".join(out)

    def __hash__(self) -> int:
        return hash(str(self))

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.upper() if value else None


@functools.lru_cache(maxsize=4096)
def parse_uri(text: str) -> SipUri:
    """Parse a URI; unsupported schemes raise SipParseError(416) (RFC 3261 §8.2.2.1).

    Cached by its text: every message of a call carries the same From, To and Contact, each
    read several times. The result is shared, so it is never changed (``replace`` makes a new
    one); errors are not cached and are raised again for each message."""
    colon = text.find(":")
    scheme = text[:colon].lower() if colon > 0 else ""
    if not scheme or not scheme[0].isalpha() or not _SCHEME_CHARS.issuperset(scheme) or not scheme.isascii():
        raise _bad("not a URI")
    if scheme not in SUPPORTED_SCHEMES:
        raise SipParseError(416, f"unsupported URI scheme {scheme!r}")
    rest = text[colon + 1 :]
    if not rest:
        raise _bad("empty URI")
    if scheme == "tel":
        number, semi, param_text = rest.partition(";")
        if not number or not _TEL_CHARS.issuperset(number):
            raise _bad("invalid telephone number")
        return SipUri("tel", number, "", None, _parse_params(param_text, _PARAM_CHARS) if semi else {})

    user: str | None = None
    password: str | None = None
    # "@" cannot appear unescaped after the userinfo (params and headers exclude it), while "?" and
    # ";" can appear inside the user part (RFC 4475 §3.1.1.2), so the last "@" splits reliably.
    at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        user_text, has_pw, pw_text = userinfo.partition(":")
        if not user_text:
            raise _bad("empty user part")
        user = _unescape(user_text, _USER_CHARS, "user")
        if has_pw:
            password = _unescape(pw_text, _PASSWORD_CHARS, "password")
    rest, qmark, header_text = rest.partition("?")
    hostport, semi, param_text = rest.partition(";")
    host, port = parse_host_port(hostport)
    params = _parse_params(param_text, _PARAM_CHARS) if semi else {}
    headers: dict[str, str] = {}
    if qmark:
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq:
                raise _bad("invalid URI header")
            headers[_unescape(name, _HNV_CHARS, "header")] = _unescape(value, _HNV_CHARS, "header")
    return SipUri(scheme, user, host, port, params, headers, password)


@dataclass(frozen=True)
class NameAddr:
    """``display <uri>;params`` as used by From, To, Contact, Refer-To, Route (RFC 3261 §20.10)."""

    display: str | None
    uri: SipUri
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params={**self.params, "tag": tag})

    def __str__(self) -> str:
        head = f"{quote_string(self.display)} <{self.uri}>" if self.display else f"<{self.uri}>"
        return head + "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())

    def __hash__(self) -> int:
        return hash(str(self))


def _split_header_params(text: str) -> dict[str, str | None]:
    """Header parameters after the URI: ``*( SEMI generic-param )``, LWS allowed around ";" and "="."""
    text = text.strip(WS)
    if not text:
        return {}
    if text[0] != ";":
        raise _bad("junk after URI")
    items = split_quoted(text[1:], ";")
    return generic_params(items, "invalid header parameter", "empty header parameter value")


@functools.lru_cache(maxsize=4096)
def parse_name_addr(text: str) -> NameAddr:
    """Parse name-addr or addr-spec with header parameters (From, To, Contact, Route...).

    Cached by its text, like ``parse_uri``: the result is shared and never changed."""
    s = text.strip(WS)
    display: str | None = None
    if s.startswith('"'):
        # quoted-string with quoted-pair escapes (RFC 3261 §25.1); RFC 4475 §3.1.2.6 (quotbal):
        # an unterminated one is a 400.
        quoted = read_quoted(s, 0)
        if quoted is None:
            raise _bad("unterminated quoted display name")
        display, end = quoted
        s = s[end:].lstrip(WS)
        if not s.startswith("<"):
            raise _bad("quoted display name without <URI>")
    lt = s.find("<")
    if lt >= 0:
        if display is None:
            # Token display names may hold characters outside "token" in the wild; RFC 4475
            # §3.1.2.15 (baddn) lets robust elements accept them.
            display = s[:lt].strip(WS) or None
        gt = s.find(">", lt)
        if gt < 0:
            raise _bad("unterminated <URI>")
        # RFC 4475 §3.1.2.14 (badaspec): spaces inside <...> are tolerated by robust elements.
        uri = parse_uri(s[lt + 1 : gt].strip(WS))
        return NameAddr(display or None, uri, _split_header_params(s[gt + 1 :]))
    if ">" in s:
        raise _bad("stray '>'")
    # addr-spec form: everything after the first ";" belongs to the header (RFC 3261 §20.10), and a
    # URI with "?" or "," must be enclosed in <> (RFC 4475 §3.1.2.13, regbadct).
    uri_text, semi, rest = s.partition(";")
    uri_text = uri_text.strip(WS)
    if "?" in uri_text or "," in uri_text or " " in uri_text or "\t" in uri_text:
        raise _bad("addr-spec with headers, commas or spaces must be in <>")
    return NameAddr(None, parse_uri(uri_text), _split_header_params(semi + rest))
