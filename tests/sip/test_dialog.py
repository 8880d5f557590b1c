"""RFC 3261 §12 dialogs: creation on both sides, in-dialog requests, CSeq checks."""

from __future__ import annotations

from ivr.sip.dialog import Dialog, DialogState, uri_address
from ivr.sip.message import Headers, SipRequest, make_response


def invite() -> SipRequest:
    h = Headers()
    h.add("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1")
    h.add("Record-Route", "<sip:p1.example;lr>")
    h.add("Record-Route", "<sip:p2.example;lr>")
    h.add("From", '"Alice" <sip:alice@10.0.0.1>;tag=a1')
    h.add("To", "<sip:ivr@10.0.0.2>")
    h.add("Call-ID", "c1")
    h.add("CSeq", "7 INVITE")
    h.add("Contact", "<sip:alice@10.0.0.1:5062>")
    return SipRequest("INVITE", "sip:ivr@10.0.0.2", h)


def test_uas_dialog_from_invite() -> None:
    d = Dialog.for_uas(invite(), "b2", DialogState.EARLY)
    assert d.id == ("c1", "b2", "a1")
    assert d.remote_target == "sip:alice@10.0.0.1:5062"
    assert d.route_set == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]  # in order (§12.1.1)
    assert d.remote_cseq == 7 and d.local_cseq == 0
    assert d.local_party == "<sip:ivr@10.0.0.2>;tag=b2"
    bye = d.create_request("BYE", "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKx")
    assert bye.uri == "sip:alice@10.0.0.1:5062"  # loose routing keeps the remote target
    assert bye.headers.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert bye.headers.get("From") == "<sip:ivr@10.0.0.2>;tag=b2"
    assert bye.headers.get("To") == '"Alice" <sip:alice@10.0.0.1>;tag=a1'
    assert bye.headers.get("CSeq") == "1 BYE"
    assert d.next_hop() == ("p1.example", 5060)


def test_uac_dialog_reverses_route_set() -> None:
    request = invite()
    ok = make_response(request, 200, to_tag="b2")
    for rr in request.headers.get_all("Record-Route"):
        ok.headers.add("Record-Route", rr)
    ok.headers.add("Contact", "<sip:ivr@10.0.0.2:5060>")
    d = Dialog.for_uac(request, ok)
    assert d.state is DialogState.CONFIRMED
    assert d.id == ("c1", "a1", "b2")
    assert d.route_set == ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]  # §12.1.2
    assert d.local_cseq == 7 and d.remote_cseq is None
    ack = d.create_ack(7, "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKack")
    assert ack.headers.get("CSeq") == "7 ACK" and d.local_cseq == 7  # §13.2.2.4
    reinvite = d.create_request("INVITE", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKr", contact="<sip:a@10.0.0.1>")
    assert reinvite.headers.get("CSeq") == "8 INVITE"
    assert reinvite.headers.get("Contact") == "<sip:a@10.0.0.1>"


def test_strict_router_gets_request_uri() -> None:
    d = Dialog.for_uas(invite(), "b2", DialogState.CONFIRMED)
    d.route_set = ["<sip:strict.example>", "<sip:p2.example;lr>"]
    bye = d.create_request("BYE", "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKs")
    assert bye.uri == "sip:strict.example"  # §12.2.1.1
    assert bye.headers.get_all("Route") == ["<sip:p2.example;lr>", "<sip:alice@10.0.0.1:5062>"]


def test_no_route_set() -> None:
    request = invite()
    request.headers.remove("Record-Route")
    d = Dialog.for_uas(request, "b2", DialogState.CONFIRMED)
    bye = d.create_request("BYE", "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKs")
    assert "Route" not in bye.headers
    assert d.next_hop() == ("10.0.0.1", 5062)


def test_cseq_ordering_and_target_refresh() -> None:
    d = Dialog.for_uas(invite(), "b2", DialogState.CONFIRMED)
    lower = invite()
    lower.headers.set("CSeq", "6 INFO")
    lower.method = "INFO"
    assert d.check_request(lower) == (500, "CSeq Out of Order")  # §12.2.2
    higher = invite()
    higher.headers.set("CSeq", "9 INVITE")
    higher.headers.set("Contact", "<sip:alice@10.0.0.99:5070>")
    assert d.check_request(higher) is None and d.remote_cseq == 9
    d.refresh_target(higher)
    assert d.remote_target == "sip:alice@10.0.0.99:5070"
    ack = invite()
    ack.method = "ACK"
    ack.headers.set("CSeq", "1 ACK")
    assert d.check_request(ack) is None and d.remote_cseq == 9  # ACK carries the INVITE's CSeq


def test_matches_by_tags() -> None:
    d = Dialog.for_uas(invite(), "b2", DialogState.CONFIRMED)
    bye = invite()
    bye.headers.set("To", "<sip:ivr@10.0.0.2>;tag=b2")
    assert d.matches(bye)
    bye.headers.set("To", "<sip:ivr@10.0.0.2>;tag=other")
    assert not d.matches(bye)


def test_uri_address() -> None:
    assert uri_address("sip:a@10.0.0.1") == ("10.0.0.1", 5060)
    assert uri_address("sips:a@10.0.0.1") == ("10.0.0.1", 5061)
    assert uri_address("sip:a@[::1]:5070") == ("::1", 5070)
    assert uri_address("sip:a@h.example;maddr=10.1.1.1") == ("10.1.1.1", 5060)
