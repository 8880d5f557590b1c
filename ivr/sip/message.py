"""SIP message parsing and serialization (RFC 3261 §7, §20, §25), sans-IO.

``parse_message`` takes one datagram (or one message cut out of a stream by ``framing``) and
returns a ``SipRequest`` or ``SipResponse``; for any other input it raises ``SipParseError`` and
nothing else. The error carries the status the shell should answer with and, when the request got
far enough (Via, From, To, Call-ID and CSeq present), the partial request so that a response can
be built with ``make_response``.

Accepted as valid (RFC 3261 §7.3.1 and the RFC 4475 torture messages): compact header names, any
header-name case, LWS around the colon, folded header lines, comma-joined Via/Contact/Route...
values, IPv6 literals, bare LF line endings, unknown methods and headers. Header values are stored
unfolded, compact names expanded, CSeq normalised to ``"<number> <METHOD>"`` and Content-Length
set to the length of the body actually kept, so that ``parse(bytes(parse(x))) == parse(x)``.

Parsing is split/partition based with no per-character regex; a typical INVITE parses in a few
tens of microseconds.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ivr.sip.errors import SipParseError
from ivr.sip.lexing import TOKEN_CHARS, WS, generic_params, split_list
from ivr.sip.uri import parse_host_port, parse_name_addr, parse_uri

MAX_MESSAGE_SIZE = 65_535

# RFC 3261 §7.3.3 and later RFCs: compact forms.
COMPACT_FORMS = {
    "v": "via", "i": "call-id", "f": "from", "t": "to", "m": "contact", "l": "content-length",
    "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding", "o": "event",
    "r": "refer-to", "b": "referred-by", "x": "session-expires", "u": "allow-events",
    "a": "accept-contact", "j": "reject-contact", "d": "request-disposition", "y": "identity",
    "n": "identity-info",
}  # fmt: skip

_CANONICAL_LIST = (
    "Via Call-ID From To Contact Content-Length Content-Type Supported Subject Content-Encoding Event "
    "Refer-To Referred-By Session-Expires Allow-Events Accept-Contact Reject-Contact Request-Disposition "
    "Identity Identity-Info CSeq Max-Forwards WWW-Authenticate Proxy-Authenticate Authorization "
    "Proxy-Authorization Authentication-Info Record-Route Route Require Proxy-Require Unsupported Allow "
    "Accept Accept-Encoding Accept-Language User-Agent Server Expires Min-Expires Retry-After Warning "
    "Date Timestamp Organization Priority Reply-To In-Reply-To MIME-Version Content-Disposition "
    "Content-Language Alert-Info Call-Info Error-Info RSeq RAck P-Asserted-Identity "
    "P-Preferred-Identity Privacy Reason Min-SE Path Service-Route Subscription-State Replaces "
    "SIP-ETag SIP-If-Match Security-Client Security-Server Security-Verify History-Info Diversion"
)
CANONICAL_NAMES = {name.lower(): name for name in _CANONICAL_LIST.split()}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1): several values may share one
# header line, and get_all() returns them one by one.
LIST_HEADERS = frozenset(
    "via contact route record-route allow supported require proxy-require unsupported accept "
    "accept-encoding accept-language allow-events content-encoding content-language in-reply-to "
    "alert-info call-info error-info warning path service-route reason security-client "
    "security-server security-verify p-asserted-identity history-info diversion".split()
)
# RFC 3261 §7.3.1: these must appear at most once (RFC 4475 §3.3.11, multi01).
_SINGLETONS = ("call-id", "cseq", "from", "to", "max-forwards")
_MANDATORY = (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"))


REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    422: "Session Interval Too Small", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip


def header_key(name: str) -> str:
    """Lookup key of a header name: lower case, compact form expanded."""
    key = name.lower()
    return COMPACT_FORMS.get(key, key) if len(key) == 1 else key


class Headers:
    """Ordered, case-insensitive multi-dict of header fields; names are kept in canonical form."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        # (lookup key, canonical name, value)
        self._items: list[tuple[str, str, str]] = []
        for name, value in items:
            self.add(name, value)

    @staticmethod
    def _entry(name: str, value: str) -> tuple[str, str, str]:
        key = header_key(name)
        return key, CANONICAL_NAMES.get(key, name), value

    def get(self, name: str) -> str | None:
        """First value; for list headers (Via, Contact...) the first element of the first line."""
        key = header_key(name)
        for k, _, value in self._items:
            if k == key:
                if key in LIST_HEADERS and "," in value:
                    return split_list(value)[0]
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value in order; comma-joined values of list headers are split (empties dropped)."""
        key = header_key(name)
        values = [value for k, _, value in self._items if k == key]
        if key in LIST_HEADERS:
            return [element for value in values for element in split_list(value) if element]
        return values

    def add(self, name: str, value: str) -> None:
        self._items.append(self._entry(name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name by one, at the position of the first (else appended)."""
        entry = self._entry(name, value)
        key = entry[0]
        out: list[tuple[str, str, str]] = []
        placed = False
        for item in self._items:
            if item[0] == key:
                if not placed:
                    out.append(entry)
                    placed = True
            else:
                out.append(item)
        if not placed:
            out.append(entry)
        self._items = out

    def remove(self, name: str) -> None:
        key = header_key(name)
        self._items = [item for item in self._items if item[0] != key]

    def items(self) -> list[tuple[str, str]]:
        return [(canonical, value) for _, canonical, value in self._items]

    def copy(self) -> Headers:
        other = Headers()
        other._items = list(self._items)
        return other

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        return any(k == key for k, _, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items())

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self.items() == other.items()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    def _serialize(self, out: list[str], body_length: int) -> None:
        # Content-Length is always written, from the body (RFC 3261 §20.14, mandatory on streams).
        seen = False
        for key, canonical, value in self._items:
            if key == "content-length":
                if not seen:
                    out.append(f"Content-Length: {body_length}")
                    seen = True
            else:
                out.append(f"{canonical}: {value}")
        if not seen:
            out.append(f"Content-Length: {body_length}")


def _encode(start_line: str, headers: Headers, body: bytes) -> bytes:
    lines = [start_line]
    headers._serialize(lines, len(body))
    lines.append("")
    lines.append("")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body


@dataclass
class SipRequest:
    method: str
    uri: str
    headers: Headers
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return _encode(f"{self.method} {self.uri} SIP/2.0", self.headers, self.body)


@dataclass
class SipResponse:
    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return _encode(f"SIP/2.0 {self.status} {self.reason}", self.headers, self.body)


@dataclass
class Via:
    """One via-parm (RFC 3261 §20.42). ``host`` has no IPv6 brackets; ``__str__`` adds them."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        value = self.params.get("rport")
        return int(value) if value and value.isascii() and value.isdigit() else None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port is not None else ""
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())
        return f"SIP/2.0/{self.transport} {host}{port}{params}"


def parse_via(value: str) -> Via:
    """Parse one via-parm; LWS is allowed around "/", ":", ";" and "=" (RFC 3261 §25.1).

    A message's top Via is read by the parser's checks, the transaction layer and the UAS, so
    the parse is cached by its text; each caller gets its own copy (the UAS adds received/rport
    to the one it sends back)."""
    via = _parse_via(value)
    return Via(via.transport, via.host, via.port, dict(via.params))


@functools.lru_cache(maxsize=4096)
def _parse_via(value: str) -> Via:
    if "," in value and len(split_list(value)) > 1:
        raise SipParseError(400, "several Via values; use Headers.get_all('Via')")
    sent, semi, param_text = value.partition(";")
    proto = sent.split("/", 2)
    if len(proto) != 3 or proto[0].strip(WS).upper() != "SIP" or proto[1].strip(WS) != "2.0":
        raise SipParseError(400, "Via: bad sent-protocol")
    parts = proto[2].split(None, 1)
    if len(parts) != 2 or not TOKEN_CHARS.issuperset(parts[0]):
        raise SipParseError(400, "Via: bad transport or missing sent-by")
    sent_by = parts[1].strip()
    if " " in sent_by or "\t" in sent_by:
        # SWS is allowed around the colon of sent-by; anything else is junk.
        sent_by = ":".join(piece.strip() for piece in sent_by.split(":"))
        if " " in sent_by or "\t" in sent_by:
            raise SipParseError(400, "Via: bad sent-by")
    host, port = parse_host_port(sent_by)
    params = generic_params(param_text.split(";"), "Via: bad parameter", "Via: bad parameter") if semi else {}
    return Via(parts[0].upper(), host, port, params)


def parse_cseq(value: str) -> tuple[int, str]:
    """CSeq = 1*DIGIT LWS Method; the number must be below 2**31 (RFC 3261 §8.1.1.5)."""
    parts = value.split()
    if len(parts) != 2:
        raise SipParseError(400, "CSeq: expected '<number> <method>'")
    number, method = parts
    if not number.isascii() or not number.isdigit() or len(number.lstrip("0")) > 10:
        raise SipParseError(400, "CSeq: bad sequence number")
    seq = int(number)
    if seq >= 2**31:
        raise SipParseError(400, "CSeq: sequence number too large")
    if not TOKEN_CHARS.issuperset(method):
        raise SipParseError(400, "CSeq: bad method")
    return seq, method


def _parse_start_line(line: str) -> tuple[SipRequest | SipResponse, SipParseError | None]:
    """Returns the bare message and a deferred error (505/416/400 raised once headers are known)."""
    if line[:4].upper() == "SIP/":
        parts = line.split(" ", 2)
        status = parts[1] if len(parts) > 1 else ""
        if len(status) != 3 or not status.isdigit() or not status.isascii() or not "1" <= status[0] <= "6":
            raise SipParseError(400, "bad status line")
        if parts[0].upper() != "SIP/2.0":
            raise SipParseError(505, "unsupported SIP version")
        return SipResponse(int(status), parts[2].strip(WS) if len(parts) > 2 else "", Headers()), None
    # RFC 4475 §3.1.2.10 (trws): trailing whitespace is ignored; §3.1.2.8/9 (lwsruri, lwsstart):
    # extra or embedded spaces make the line unparseable, a 400.
    parts = line.rstrip(WS).split(" ")
    if len(parts) != 3 or not parts[0] or not TOKEN_CHARS.issuperset(parts[0]):
        raise SipParseError(400, "bad request line")
    method, uri, version = parts
    request = SipRequest(method, uri, Headers())
    if version.upper() != "SIP/2.0":
        if version[:4].upper() == "SIP/":
            return request, SipParseError(505, f"unsupported SIP version {version!r}")
        raise SipParseError(400, "bad request line")
    try:
        parsed = parse_uri(uri)
    except SipParseError as exc:
        return request, exc
    if parsed.headers:
        # RFC 3261 §19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 escruri).
        return request, SipParseError(400, "headers in Request-URI")
    return request, None


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Cut at the empty line; CRLF or bare LF line endings (RFC 3261 §7.5 robustness)."""
    best = data.find(b"\r\n\r\n")
    size = 4
    limit = best if best >= 0 else len(data)
    for marker in (b"\n\n", b"\n\r\n"):
        pos = data.find(marker, 0, limit)
        if pos >= 0:
            best, size, limit = pos, len(marker), pos
    if best < 0:
        return data, b""
    return data[:best], data[best + size :]


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one SIP message; raises SipParseError only (never anything else, for any bytes)."""
    try:
        return _parse(data)
    except SipParseError:
        raise
    except Exception as exc:  # pragma: no cover - a parser bug must not reach the event loop
        raise SipParseError(400, f"unparseable message ({type(exc).__name__})") from exc


def _parse(data: bytes) -> SipRequest | SipResponse:
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError(513, "message too large")
    # RFC 3261 §7.5: CRLFs before the start line are ignored.
    data = data.lstrip(b"\r\n")
    head_bytes, rest = _split_head(data)
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError(400, "header section is not UTF-8") from None
    lines = head.split("\n")
    start = lines[0].rstrip("\r")
    if not start:
        raise SipParseError(400, "empty message")
    message, error = _parse_start_line(start)

    items = message.headers._items
    canonical_names = CANONICAL_NAMES
    compact = COMPACT_FORMS
    for raw in lines[1:]:
        line = raw[:-1] if raw.endswith("\r") else raw
        if line[:1] in (" ", "\t"):
            # RFC 3261 §7.3.1: a continuation line is folded into the previous value with one SP.
            if not items:
                error = error or SipParseError(400, "continuation line before any header")
                continue
            key, name, value = items[-1]
            more = line.strip(WS)
            items[-1] = (key, name, f"{value} {more}" if value and more else value or more)
            continue
        colon = line.find(":")
        name = line[:colon].rstrip(WS) if colon > 0 else ""
        if not name or not TOKEN_CHARS.issuperset(name):
            if line.strip(WS):
                error = error or SipParseError(400, "malformed header line")
            continue
        key = name.lower()
        if len(key) == 1:
            key = compact.get(key, key)
        items.append((key, canonical_names.get(key, name), line[colon + 1 :].strip(WS)))

    headers = message.headers
    present: dict[str, int] = {}
    for key, _, _ in items:
        present[key] = present.get(key, 0) + 1
    for key, canonical in _MANDATORY:
        if key not in present:
            error = error or SipParseError(400, f"missing {canonical} header")
    for key in _SINGLETONS:
        if present.get(key, 0) > 1:
            error = error or SipParseError(400, f"more than one {CANONICAL_NAMES[key]} header")
    if error is None:
        error = _check_headers(message, headers, present)
    body = _take_body(headers, rest, present)
    if isinstance(body, SipParseError):
        error = error or body
        body = b""

    if error is not None:
        if isinstance(message, SipRequest) and all(key in present for key, _ in _MANDATORY):
            error.partial = message
        raise error
    message.body = body
    return message


def _check_headers(
    message: SipRequest | SipResponse, headers: Headers, present: dict[str, int]
) -> SipParseError | None:
    try:
        cseq_value = headers.get("CSeq") or ""
        seq, method = parse_cseq(cseq_value)
        if isinstance(message, SipRequest) and method != message.method:
            # RFC 4475 §3.1.2.17/18 (mismatch01/02): method names are case-sensitive.
            return SipParseError(400, "CSeq method does not match the request method")
        normal = f"{seq} {method}"
        if normal != cseq_value:
            headers.set("CSeq", normal)
        for key, _, value in headers._items:
            if key == "via":
                for element in split_list(value):
                    parse_via(element)
            elif key in ("from", "to") or (key == "contact" and value != "*"):
                for element in split_list(value) if key == "contact" else (value,):
                    try:
                        parse_name_addr(element)
                    except SipParseError as exc:
                        # RFC 4475 §3.3.6 (unksm2): other schemes in From/To/Contact are not a
                        # reason to refuse the message; the dialog layer decides what to do.
                        if exc.status != 416:
                            raise SipParseError(400, f"{key}: {exc.reason}") from None
            elif key == "record-route":
                # It becomes the dialog's route set (§12.1.1), parsed again for every in-dialog
                # request: one we cannot parse now would make the BYE fail later (found by the fuzzer).
                for element in split_list(value):
                    try:
                        parse_name_addr(element)
                    except SipParseError as exc:
                        raise SipParseError(400, f"record-route: {exc.reason}") from None
            elif key == "max-forwards":
                # RFC 3261 §20.22: 0-255 (RFC 4475 §3.1.2.4, scalar02).
                if not value.isascii() or not value.isdigit() or int(value) > 255:
                    return SipParseError(400, "bad Max-Forwards")
    except SipParseError as exc:
        return SipParseError(exc.status if exc.status != 416 else 400, exc.reason)
    return None


def _take_body(headers: Headers, rest: bytes, present: dict[str, int]) -> bytes | SipParseError:
    if "content-length" not in present:
        # Datagram without Content-Length: the body is the rest of the datagram (RFC 3261 §18.3).
        headers.set("Content-Length", str(len(rest)))
        return rest
    values = {value for key, _, value in headers._items if key == "content-length"}
    if len(values) != 1:
        return SipParseError(400, "conflicting Content-Length headers")
    text = values.pop()
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        # RFC 4475 §3.1.2.3 (ncl): negative or garbage lengths are a 400.
        return SipParseError(400, "invalid Content-Length")
    length = int(text)
    if length > len(rest):
        # RFC 4475 §3.1.2.2 (clerr): the datagram holds fewer octets than announced.
        return SipParseError(400, "body shorter than Content-Length")
    if present["content-length"] > 1 or text != str(length):
        headers.set("Content-Length", str(length))
    # RFC 3261 §18.3: octets after Content-Length are discarded (RFC 4475 §3.1.1.8, dblreq).
    return rest[:length]


def make_response(
    request: SipRequest, status: int, reason: str | None = None, to_tag: str | None = None
) -> SipResponse:
    """A response to ``request`` with the headers RFC 3261 §8.2.6.2 says to copy."""
    headers = Headers()
    for entry in request.headers._items:
        if entry[0] == "via":
            headers._items.append(entry)
    for name in ("From", "To", "Call-ID", "CSeq"):
        found = request.headers.get(name)
        if found is None:
            continue
        if name == "To" and to_tag and not _has_tag(found):
            found = f"{found};tag={to_tag}"
        headers.add(name, found)
    if reason is None:
        reason = REASON_PHRASES.get(status, "Unknown" if status >= 300 else "OK")
    return SipResponse(status, reason, headers)


def _has_tag(value: str) -> bool:
    try:
        return parse_name_addr(value).tag is not None
    except SipParseError:
        return ";tag=" in value.replace(" ", "").lower()


def new_branch() -> str:
    """A fresh branch; the magic cookie marks RFC 3261 compliance (§8.1.1.7)."""
    return "z9hG4bK" + secrets.token_hex(8)


def new_tag() -> str:
    """A From/To tag with at least 32 bits of randomness (RFC 3261 §19.3)."""
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    """A globally unique Call-ID (RFC 3261 §8.1.1.4)."""
    return f"{secrets.token_hex(12)}@{host}"
