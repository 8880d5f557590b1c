"""Quote-aware scanning of SIP header text (RFC 3261 §25.1, RFC 7235 §2.1), the one home for it.

Header values are cut on separators that only count outside a quoted-string, and for list headers
also outside ``<...>``: a display name may hold a comma (``"Doe, John" <sip:j@h>``), a URI in angle
brackets a semicolon or a comma. The message parser (list headers), the URI module (name-addr
display names and header parameters) and digest authentication (auth-params) all scan with the
functions here, so that escapes and unterminated quotes are treated the same everywhere.

A quoted-string is ``DQUOTE *(qdtext / quoted-pair) DQUOTE`` where a quoted-pair is a backslash and
the character it escapes. Scanning is split/find based rather than per-character regex, since it
runs on the From, To, Contact and Via of every message.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from ivr.sip.errors import SipParseError

# RFC 3261 §25.1: LWS without the line folding (folds are joined by the parser before we scan).
WS = " \t"
# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")


def _split(text: str, sep: str, brackets: bool) -> tuple[list[str], bool]:
    """Cut ``text`` on ``sep`` outside quoted-strings (and ``<...>`` when ``brackets``).

    Returns the pieces, unstripped, and whether a quoted-string was left open at the end."""
    out: list[str] = []
    start = 0
    quoted = angle = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1  # a quoted-pair: the next character is taken as it is
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif brackets and c == "<":
            angle = True
        elif brackets and c == ">":
            angle = False
        elif c == sep and not angle:
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return out, quoted


def split_list(value: str) -> list[str]:
    """Split a list header value on commas outside quotes and <...>; elements stripped, empties kept.

    Lenient by design: an unterminated quote runs to the end of the value, and the element that
    holds it is refused later by whoever parses that element."""
    if "," not in value:
        return [value.strip(WS)]
    pieces, _ = _split(value, ",", True)
    return [piece.strip(WS) for piece in pieces]


def split_quoted(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes (backslash escapes honoured); pieces unstripped.

    An unterminated quoted-string is a 400: a parameter list cannot be read without its end."""
    if '"' not in text:
        return text.split(sep)
    pieces, unterminated = _split(text, sep, False)
    if unterminated:
        raise SipParseError(400, "unterminated quoted string")
    return pieces


def read_quoted(text: str, start: int) -> tuple[str, int] | None:
    """Read the quoted-string that opens at ``text[start]`` (a double quote).

    Returns its content with the quoted-pairs undone and the index just past the closing quote,
    or None when the closing quote is missing, so that each grammar can refuse it in its own words
    (a display name is a SipParseError, an auth-param a DigestError)."""
    chunks: list[str] = []
    i = start + 1
    while True:
        close = text.find('"', i)
        if close < 0:
            return None
        escape = text.find("\\", i, close)
        if escape < 0:
            chunks.append(text[i:close])
            return "".join(chunks), close + 1
        chunks.append(text[i:escape])
        chunks.append(text[escape + 1])  # may be the quote that looked like the end
        i = escape + 2


def quote_string(value: str) -> str:
    """``value`` as a quoted-string: backslashes and double quotes escaped (RFC 3261 §25.1)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generic_params(items: Iterable[str], bad_name: str, empty_value: str) -> dict[str, str | None]:
    """``name[=value]`` items (RFC 3261 §25.1 generic-param), LWS allowed around the "=".

    Names are tokens, lower-cased; a name alone maps to None. An item whose name is not a token is
    a 400 with ``bad_name`` as its reason, ``name=`` with nothing after it one with ``empty_value``
    (RFC 4475 §3.1.2.1, badinv01: ";;" and empty values make a header invalid)."""
    params: dict[str, str | None] = {}
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip(WS)
        if not name or not TOKEN_CHARS.issuperset(name):
            raise SipParseError(400, bad_name)
        value = value.strip(WS)
        if eq and not value:
            raise SipParseError(400, empty_value)
        params[name.lower()] = value if eq else None
    return params
