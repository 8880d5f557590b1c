"""SIP dialogs (RFC 3261 §12): the state two user agents share for the length of a call.

A dialog is identified by Call-ID, local tag and remote tag (§12). It remembers who we and the
peer are (the From/To values, tags included), where in-dialog requests go (the remote target from
Contact, refreshed by target-refresh requests such as re-INVITE, §12.2), which proxies stay on the
path (the route set from Record-Route), and both CSeq spaces. It builds our in-dialog requests
(§12.2.1.1) and checks the peer's (§12.2.2). It neither sends nor retransmits anything.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from ivr.sip.message import Headers, SipRequest, SipResponse, parse_cseq
from ivr.sip.uri import parse_name_addr, parse_uri


class DialogState(enum.Enum):
    EARLY = "early"  # created by a provisional response with a To tag (§12.1)
    CONFIRMED = "confirmed"  # created or promoted by a 2xx
    TERMINATED = "terminated"


def _first_contact_uri(message: SipRequest | SipResponse) -> str | None:
    contacts = message.headers.get_all("Contact")
    if not contacts:
        return None
    uri = parse_name_addr(contacts[0]).uri
    # The remote target becomes the Request-URI of in-dialog requests, where §19.1.1 allows no
    # headers: "<sip:a@b?x=y>" would make our BYE one the peer must refuse (found by the fuzzer).
    return str(replace(uri, headers={}) if uri.headers else uri)


def uri_address(uri: str) -> tuple[str, int]:
    """Transport address of a SIP URI: maddr or host, and port (default 5060, or 5061 for sips).

    Name resolution (RFC 3263) is not done here; hosts are expected to be IP literals or names the
    shell resolves.
    """
    parsed = parse_uri(uri)
    host = parsed.params.get("maddr") or parsed.host
    host = host.strip("[]")
    return host, parsed.port or (5061 if parsed.scheme == "sips" else 5060)


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_party: str  # our From (UAC) / To (UAS) value, with our tag
    remote_party: str  # the peer's, with its tag
    remote_target: str  # URI from the peer's Contact (§12.1.1, §12.1.2)
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    remote_cseq: int | None = None
    state: DialogState = DialogState.CONFIRMED

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    # --- creation -----------------------------------------------------------------------------

    @classmethod
    def for_uas(cls, request: SipRequest, local_tag: str, state: DialogState) -> Dialog:
        """Dialog built by the UAS from the INVITE it answers (§12.1.1).

        The route set is the request's Record-Route in order; the remote target its Contact.
        """
        h = request.headers
        remote = h.get("From") or ""
        to = parse_name_addr(h.get("To") or "")
        return cls(
            call_id=h.get("Call-ID") or "",
            local_tag=local_tag,
            remote_tag=parse_name_addr(remote).tag or "",
            local_party=str(to.with_tag(local_tag)),
            remote_party=remote,
            remote_target=_first_contact_uri(request) or request.uri,
            route_set=list(h.get_all("Record-Route")),
            local_cseq=0,
            remote_cseq=parse_cseq(h.get("CSeq") or "")[0],
            state=state,
        )

    @classmethod
    def for_uac(cls, request: SipRequest, response: SipResponse) -> Dialog:
        """Dialog built by the UAC from a 2xx or tagged 1xx to its INVITE (§12.1.2).

        The route set is the response's Record-Route in reverse order.
        """
        local = request.headers.get("From") or ""
        remote = response.headers.get("To") or ""
        return cls(
            call_id=request.headers.get("Call-ID") or "",
            local_tag=parse_name_addr(local).tag or "",
            remote_tag=parse_name_addr(remote).tag or "",
            local_party=local,
            remote_party=remote,
            remote_target=_first_contact_uri(response) or request.uri,
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_cseq=parse_cseq(request.headers.get("CSeq") or "")[0],
            remote_cseq=None,
            state=DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY,
        )

    # --- our requests (§12.2.1) ---------------------------------------------------------------

    def next_hop(self) -> tuple[str, int]:
        """Where an in-dialog request goes: the first route if any, else the remote target."""
        if self.route_set:
            return uri_address(str(parse_name_addr(self.route_set[0]).uri))
        return uri_address(self.remote_target)

    def _request_uri_and_routes(self) -> tuple[str, list[str]]:
        # §12.2.1.1: loose routing keeps the remote target as Request-URI; a strict router in the
        # first route gets the Request-URI and the remote target goes last in Route.
        if not self.route_set:
            return self.remote_target, []
        first = parse_name_addr(self.route_set[0]).uri
        if "lr" in first.params:
            return self.remote_target, list(self.route_set)
        params = {k: v for k, v in first.params.items() if k not in ("lr", "method", "maddr", "ttl")}
        strict = replace(first, params=params, headers={})
        return str(strict), [*self.route_set[1:], f"<{self.remote_target}>"]

    def create_request(
        self,
        method: str,
        via: str,
        *,
        contact: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> SipRequest:
        """Build an in-dialog request. The CSeq is incremented unless given (ACK, CANCEL)."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        uri, routes = self._request_uri_and_routes()
        h = Headers()
        h.add("Via", via)
        for route in routes:
            h.add("Route", route)
        h.add("Max-Forwards", "70")
        h.add("From", self.local_party)
        h.add("To", self.remote_party)
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        if contact is not None:
            h.add("Contact", contact)
        for name, value in extra_headers or ():
            h.add(name, value)
        if content_type is not None and body:
            h.add("Content-Type", content_type)
        return SipRequest(method, uri, h, body)

    def create_ack(self, invite_cseq: int, via: str, *, body: bytes = b"") -> SipRequest:
        """ACK for a 2xx: a request of its own with a new branch and the INVITE's CSeq number.

        §13.2.2.4: built by the UA core like any in-dialog request, but the CSeq number is the
        INVITE's, not a new one.
        """
        return self.create_request(
            "ACK", via, body=body, content_type="application/sdp" if body else None, cseq=invite_cseq
        )

    # --- the peer's requests (§12.2.2) --------------------------------------------------------

    def check_request(self, request: SipRequest) -> tuple[int, str] | None:
        """Validate the CSeq of an in-dialog request; returns an error response to send, or None.

        §12.2.2: a CSeq lower than the last one seen is out of order and gets a 500. ACK and
        CANCEL carry the CSeq of the request they belong to and are not checked.
        """
        if request.method in ("ACK", "CANCEL"):
            return None
        number = parse_cseq(request.headers.get("CSeq") or "")[0]
        if self.remote_cseq is not None and number < self.remote_cseq:
            return (500, "CSeq Out of Order")
        self.remote_cseq = number
        return None

    def refresh_target(self, message: SipRequest | SipResponse) -> None:
        """Target refresh (re-INVITE or its 2xx, UPDATE): take the new Contact (§12.2)."""
        contact = _first_contact_uri(message)
        if contact:
            self.remote_target = contact

    def matches(self, message: SipRequest | SipResponse, incoming: bool = True) -> bool:
        """Whether a request from the peer (incoming) carries this dialog's tags."""
        h = message.headers
        from_tag = parse_name_addr(h.get("From") or "").tag
        to_tag = parse_name_addr(h.get("To") or "").tag
        if incoming:
            return from_tag == self.remote_tag and to_tag == self.local_tag
        return from_tag == self.local_tag and to_tag == self.remote_tag
