"""Two user agent cores against each other with a fake clock (RFC 3261 §8, §9, §13, §14, §15)."""

from __future__ import annotations

import itertools

import pytest

from ivr.sip.events import (
    CallCancelled,
    CallConfirmed,
    CallEnded,
    IncomingCall,
    InfoReceived,
    OutgoingAnswered,
    OutgoingFailed,
    OutgoingProgress,
    ReferResult,
    ReInviteAnswered,
    ReInviteReceived,
)
from ivr.sip.message import SipRequest, SipResponse, parse_message
from ivr.sip.useragent import CallState, UserAgent

from .ua_harness import SDP_A, SDP_B, Net, make_ua


def setup_call(answer: bool = True) -> tuple[Net, UserAgent, UserAgent, str]:
    uac, uas = make_ua(5070), make_ua(5060)
    net = Net(uac, uas)
    call_id = uac.invite("sip:ivr@127.0.0.1:5060", SDP_A, net.now)
    net.pump()
    if answer:
        uas.answer(call_id, SDP_B, net.now)
        net.pump()
    return net, uac, uas, call_id


def test_basic_call_uac_hangs_up() -> None:
    uac, uas = make_ua(5070), make_ua(5060)
    net = Net(uac, uas)
    call_id = uac.invite("sip:ivr@127.0.0.1:5060", SDP_A, 0.0)
    net.pump()
    incoming = net.of(uas)[0]
    assert isinstance(incoming, IncomingCall)
    assert incoming.offer_sdp == SDP_A and incoming.remote_addr == ("127.0.0.1", 5070)
    uas.send_provisional(call_id, 180, net.now)
    net.pump()
    uas.answer(call_id, SDP_B, net.now)
    net.pump()
    assert [type(e) for e in net.of(uac)] == [OutgoingProgress, OutgoingProgress, OutgoingAnswered]
    assert [e.status for e in net.of(uac)[:2]] == [100, 180]  # type: ignore[union-attr]
    assert net.of(uac)[2] == OutgoingAnswered(call_id, SDP_B)
    assert net.of(uas)[1:] == [CallConfirmed(call_id)]
    assert uac.active_calls == uas.active_calls == 1
    # 180 and 200 carry our To tag and Contact; 100 has no tag (§8.2.6.2, §12.1.1).
    ringing = net.sent(uas, "180")[0][1]
    trying = net.sent(uas, "100")[0][1]
    assert ";tag=" in (ringing.headers.get("To") or "") and ringing.headers.get("Contact")
    assert ";tag=" not in (trying.headers.get("To") or "")
    uac.hangup(call_id, net.now)
    net.pump()
    assert net.of(uas)[-1] == CallEnded(call_id, "bye", True, None)
    assert net.of(uac)[-1] == CallEnded(call_id, "hangup", False, None)
    assert uac.active_calls == uas.active_calls == 0
    # The 2xx ACK is its own transaction: new branch, INVITE's CSeq number (§13.2.2.4).
    ack = net.sent(uac, "ACK")[0][1]
    invite = net.sent(uac, "INVITE")[0][1]
    assert ack.headers.get("CSeq") == "1 ACK"
    assert ack.headers.get("Via") != invite.headers.get("Via")
    bye = net.sent(uac, "BYE")[0][1]
    assert bye.headers.get("CSeq") == "2 BYE"


def test_basic_call_uas_hangs_up() -> None:
    net, uac, uas, call_id = setup_call()
    uas.hangup(call_id, net.now)
    net.pump()
    assert net.of(uac)[-1] == CallEnded(call_id, "bye", True, None)
    assert net.of(uas)[-1] == CallEnded(call_id, "hangup", False, None)
    bye = net.sent(uas, "BYE")[0][1]
    assert isinstance(bye, SipRequest) and bye.uri == "sip:ivr@127.0.0.1:5070"
    assert net.sent(uac, "200")  # the UAC answered the BYE
    net.advance(100.0)
    assert uac.get_timer() is None and uas.get_timer() is None


def test_retransmitted_invite_is_absorbed() -> None:
    uac, uas = make_ua(5070), make_ua(5060)
    net = Net(uac, uas)
    uac.invite("sip:ivr@127.0.0.1:5060", SDP_A, 0.0)
    # lose the 100 Trying: Timer A retransmits the INVITE after T1
    net.pump(drop=lambda m, s, d: isinstance(m, SipResponse) and m.status == 100)
    net.advance(0.6)
    invites = net.sent(uac, "INVITE")
    assert [t for t, _ in invites] == [0.0, 0.5]
    assert len([e for e in net.of(uas) if isinstance(e, IncomingCall)]) == 1
    assert len(net.sent(uas, "100")) == 2  # the transaction resent its last response
    net.advance(10.0)
    assert len(net.sent(uac, "INVITE")) == 2  # Proceeding: no more Timer A


def test_2xx_retransmitted_until_ack_then_bye_after_64_t1() -> None:
    net, uac, uas, call_id = setup_call(answer=False)
    no_ack = lambda m, s, d: isinstance(m, SipRequest) and m.method == "ACK"  # noqa: E731
    uas.answer(call_id, SDP_B, net.now)
    net.pump(drop=no_ack)
    net.advance(40.0, drop=no_ack)
    times = [t for t, _ in net.sent(uas, "200") if _.headers.get("CSeq") == "1 INVITE"]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]  # T1 doubling up to T2 (§13.3.1.4)
    assert max(times) <= 32.0
    byes = net.sent(uas, "BYE")
    assert len(byes) == 1 and byes[0][0] == 32.0  # 64*T1
    assert CallEnded(call_id, "no ACK", False, None) in net.of(uas)
    assert CallConfirmed(call_id) not in net.of(uas)
    # the UAC ACKed every retransmitted 2xx (§13.2.2.4) and then saw the BYE
    assert len(net.sent(uac, "ACK")) == len(times)
    assert net.of(uac)[-1] == CallEnded(call_id, "bye", True, None)


def test_ack_stops_2xx_retransmission() -> None:
    net, _uac, uas, call_id = setup_call(answer=False)
    uas.answer(call_id, SDP_B, net.now)
    first = True

    def drop_first_ack(m: SipRequest | SipResponse, s: object, d: object) -> bool:
        nonlocal first
        if isinstance(m, SipRequest) and m.method == "ACK" and first:
            first = False
            return True
        return False

    net.pump(drop=drop_first_ack)
    net.advance(40.0)
    assert len(net.sent(uas, "200")) == 2
    assert net.of(uas)[-1] == CallConfirmed(call_id)
    assert uas.call_state(call_id) is CallState.CONFIRMED
    assert not net.sent(uas, "BYE")


def test_cancel_gives_487_and_200() -> None:
    net, uac, uas, call_id = setup_call(answer=False)
    uas.send_provisional(call_id, 180, net.now)
    net.pump()
    uac.hangup(call_id, net.now)
    net.pump()
    assert net.of(uas)[-1] == CallCancelled(call_id)
    cancel_ok = [m for _, m in net.sent(uas, "200") if m.headers.get("CSeq") == "1 CANCEL"]
    assert len(cancel_ok) == 1
    assert [m.headers.get("CSeq") for _, m in net.sent(uas, "487")] == ["1 INVITE"]
    assert net.of(uac)[-1] == CallEnded(call_id, "cancelled", False, 487)
    # the ACK for the 487 comes from the client transaction, same branch as the INVITE (§17.1.1.3)
    ack = net.sent(uac, "ACK")[0][1]
    invite = net.sent(uac, "INVITE")[0][1]
    assert ack.headers.get("Via") == invite.headers.get("Via")
    assert uac.active_calls == uas.active_calls == 0
    uas.answer(call_id, SDP_B, net.now)  # too late: ignored
    net.pump()
    assert not [m for _, m in net.sent(uas, "200") if m.headers.get("CSeq") == "1 INVITE"]


def test_cancel_waits_for_a_provisional() -> None:
    uac, uas = make_ua(5070), make_ua(5060)
    net = Net(uac, uas)
    call_id = uac.invite("sip:ivr@127.0.0.1:5060", SDP_A, 0.0)
    uac.hangup(call_id, 0.0)  # §9.1: nothing received yet, so no CANCEL yet
    out = uac.datagrams_to_send()
    assert [parse_message(d).method for d, _ in out] == ["INVITE"]  # type: ignore[union-attr]
    uas.receive_datagram(out[0][0], ("127.0.0.1", 5070), 0.0)
    net.pump()
    assert net.sent(uac, "CANCEL")
    assert CallCancelled(call_id) in net.of(uas)
    assert net.of(uac)[-1] == CallEnded(call_id, "cancelled", False, 487)


def test_reject_and_non_2xx_ack_from_client_transaction() -> None:
    net, uac, uas, call_id = setup_call(answer=False)
    uas.reject(call_id, 486, net.now)
    first = True

    def drop_first_ack(m: SipRequest | SipResponse, s: object, d: object) -> bool:
        nonlocal first
        if isinstance(m, SipRequest) and m.method == "ACK" and first:
            first = False
            return True
        return False

    net.pump(drop=drop_first_ack)
    assert net.of(uac)[-1] == OutgoingFailed(call_id, 486, "Busy Here")
    assert net.of(uas)[-1] == CallEnded(call_id, "rejected", False, 486)
    net.advance(1.0)  # Timer G resends the 486, the client transaction re-ACKs it
    assert len(net.sent(uas, "486")) == 2
    assert len(net.sent(uac, "ACK")) == 2
    net.advance(60.0)
    assert len(net.sent(uas, "486")) == 2  # Confirmed: no more retransmissions
    assert uac.get_timer() is None and uas.get_timer() is None


def test_timer_b_timeout() -> None:
    uac = make_ua(5070)
    net = Net(uac)
    call_id = uac.invite("sip:nobody@127.0.0.1:5999", SDP_A, 0.0)
    net.pump()
    net.advance(100.0)
    sends = [t for t, _, d, m in net.log if isinstance(m, SipRequest) and m.method == "INVITE"]
    assert sends == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # Timer A doubling
    assert net.of(uac) == [OutgoingFailed(call_id, 408, "Request Timeout")]
    assert uac.active_calls == 0


def test_reinvite_accepted_and_declined() -> None:
    net, uac, uas, call_id = setup_call()
    assert uas.send_reinvite(call_id, SDP_B + b"a=sendonly\r\n", net.now)
    net.pump()
    assert net.of(uac)[-1] == ReInviteReceived(call_id, SDP_B + b"a=sendonly\r\n")
    uac.answer_reinvite(call_id, SDP_A, net.now)
    net.pump()
    assert net.of(uas)[-1] == ReInviteAnswered(call_id, 200, SDP_A)
    reinvite_ack = net.sent(uas, "ACK")[-1][1]
    assert reinvite_ack.headers.get("CSeq") == "1 ACK"  # the UAS's own CSeq space
    net.advance(5.0)
    assert len([m for _, m in net.sent(uac, "200") if "INVITE" in (m.headers.get("CSeq") or "")]) == 1
    # declined: 488, ACKed by the transaction; the call goes on
    assert uac.send_reinvite(call_id, SDP_A, net.now)
    net.pump()
    assert isinstance(net.of(uas)[-1], ReInviteReceived)
    uas.answer_reinvite(call_id, None, net.now)
    net.pump()
    assert net.of(uac)[-1] == ReInviteAnswered(call_id, 488, None)
    assert uac.call_state(call_id) is CallState.CONFIRMED
    assert uas.call_state(call_id) is CallState.CONFIRMED


def test_reinvite_glare_gives_491_both_ways() -> None:
    net, uac, uas, call_id = setup_call()
    assert uac.send_reinvite(call_id, SDP_A, net.now)
    assert uas.send_reinvite(call_id, SDP_B, net.now)
    net.pump()
    assert net.of(uac)[-1] == ReInviteAnswered(call_id, 491, None)
    assert net.of(uas)[-1] == ReInviteAnswered(call_id, 491, None)
    assert uac.send_reinvite(call_id, SDP_A, net.now)  # free to try again


def test_refer_with_notify_sipfrag() -> None:
    net, _uac, uas, call_id = setup_call()
    assert uas.refer(call_id, "sip:agent@127.0.0.1:5080", net.now)
    net.pump()
    refer = net.sent(uas, "REFER")[0][1]
    assert refer.headers.get("Refer-To") == "<sip:agent@127.0.0.1:5080>"
    # our own core refuses REFER as a UAS (405); a transferee would answer 202
    assert net.of(uas)[-1] == ReferResult(call_id, 405, True)


def test_refer_result_from_notify() -> None:
    net, uac, uas, call_id = setup_call()
    dialog = uac._calls[call_id].dialog
    assert dialog is not None
    for body, state, final in (
        (b"SIP/2.0 100 Trying\r\n", "active", False),
        (b"SIP/2.0 200 OK\r\n", "terminated", True),
    ):
        notify = dialog.create_request(
            "NOTIFY",
            uac._via(),
            body=body,
            content_type="message/sipfrag",
            extra_headers=[("Event", "refer"), ("Subscription-State", state)],
        )
        uas.receive_datagram(bytes(notify), ("127.0.0.1", 5070), net.now)
        net.pump()
        assert net.of(uas)[-1] == ReferResult(call_id, 200 if final else 100, final)
    assert len(net.sent(uas, "200")) >= 2


def test_info_dtmf() -> None:
    net, uac, uas, call_id = setup_call()
    assert uac.send_info_dtmf(call_id, "5", net.now)
    net.pump()
    assert net.of(uas)[-1] == InfoReceived(call_id, "application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n")


def test_uas_hangup_before_ack_waits_for_ack() -> None:
    net, uac, uas, call_id = setup_call(answer=False)
    uas.answer(call_id, SDP_B, net.now)
    uas.hangup(call_id, net.now)  # §15: no BYE before the ACK
    net.collect()
    assert not [d for d, _ in uas._outbox if d.startswith(b"BYE")]
    assert net.of(uas)[-1] == CallEnded(call_id, "hangup", False, None)
    net.pump()
    assert net.sent(uas, "BYE")
    assert net.of(uac)[-1] == CallEnded(call_id, "bye", True, None)
    assert uas.active_calls == 0 and uac.active_calls == 0


def test_invite_digest_challenge_retried_once() -> None:
    uac = make_ua(5070, auth_username="alice", auth_password="secret")
    call_id = uac.invite("sip:ivr@127.0.0.1:5060", SDP_A, 0.0)
    invite = parse_message(uac.datagrams_to_send()[0][0])
    assert isinstance(invite, SipRequest)
    from ivr.sip.digest import build_challenge, verify
    from ivr.sip.message import make_response

    challenge = make_response(invite, 407, to_tag="x1")
    challenge.headers.add("Proxy-Authenticate", build_challenge("example.com", "n0nce"))
    uac.receive_datagram(bytes(challenge), ("127.0.0.1", 5060), 0.1)
    out = [parse_message(d) for d, _ in uac.datagrams_to_send()]
    assert [m.method for m in out] == ["ACK", "INVITE"]  # type: ignore[union-attr]
    retry = out[1]
    assert isinstance(retry, SipRequest)
    assert retry.headers.get("CSeq") == "2 INVITE" and retry.headers.get("Call-ID") == call_id
    assert verify(retry.headers.get("Proxy-Authorization") or "", "INVITE", "secret", "example.com", "n0nce")
    again = make_response(retry, 407, to_tag="x2")
    again.headers.add("Proxy-Authenticate", build_challenge("example.com", "n0nce2"))
    uac.receive_datagram(bytes(again), ("127.0.0.1", 5060), 0.2)
    assert uac.next_event() == OutgoingFailed(call_id, 407, "Proxy Authentication Required")


def test_bye_to_unknown_dialog_gets_481_and_stray_response_dropped() -> None:
    net, uac, uas, call_id = setup_call()
    uac.hangup(call_id, net.now)
    net.pump()
    dialog = uac._calls.get(call_id)
    assert dialog is None
    bye = net.sent(uac, "BYE")[0][1]
    assert isinstance(bye, SipRequest)
    bye.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKnew1")
    bye.headers.set("CSeq", "3 BYE")
    uas.receive_datagram(bytes(bye), ("127.0.0.1", 5070), net.now)
    net.pump()
    assert net.sent(uas, "481")
    # the 481 answers a BYE no transaction of the UAC sent: dropped and counted (§17.1.3)
    assert uac.dropped == 1


@pytest.mark.parametrize("transport", ["TCP"])
def test_reliable_transport_has_no_retransmissions(transport: str) -> None:
    uac, uas = make_ua(5070, transport=transport), make_ua(5060, transport=transport)
    net = Net(uac, uas)
    call_id = uac.invite("sip:ivr@127.0.0.1:5060", SDP_A, 0.0)
    net.pump()
    uas.answer(call_id, SDP_B, net.now)
    net.pump(drop=lambda m, s, d: isinstance(m, SipRequest) and m.method == "ACK")
    net.advance(40.0)
    assert len(net.sent(uas, "200")) == 1
    assert len(net.sent(uac, "INVITE")) == 1
    assert CallEnded(call_id, "no ACK", False, None) in net.of(uas)


# --- raw messages, as SIPp or a softphone would send them ------------------------------------

PEER = ("10.0.0.9", 5062)


def raw(
    method: str,
    extra: str = "",
    *,
    branch: str = "z9hG4bK-raw-1",
    cseq: int = 1,
    to_tag: str = "",
    call_id: str = "raw-call-1@10.0.0.9",
    body: str = "",
    uri: str = "sip:ivr@127.0.0.1:5060",
) -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 10.0.0.9:5062;branch={branch};rport",
        "Max-Forwards: 70",
        "From: sipp <sip:sipp@10.0.0.9:5062>;tag=caller-tag",
        f"To: <sip:ivr@127.0.0.1:5060>{tag}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:sipp@10.0.0.9:5062>",
    ]
    if extra:
        lines.extend(extra.strip("\n").split("\n"))
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def responses(ua: UserAgent, now: float = 0.0) -> list[tuple[SipResponse, tuple[str, int]]]:
    out = []
    for data, addr in ua.datagrams_to_send():
        message = parse_message(data)
        assert isinstance(message, SipResponse)
        out.append((message, addr))
    return out


def only_response(ua: UserAgent, data: bytes) -> SipResponse:
    ua.receive_datagram(data, PEER, 0.0)
    (response, addr), *rest = responses(ua)
    assert not rest and addr == PEER
    return response


def test_options_out_of_dialog() -> None:
    ua = make_ua(5060)
    response = only_response(ua, raw("OPTIONS"))
    assert response.status == 200
    assert "INVITE" in response.headers.get_all("Allow")
    assert response.headers.get("Accept") == "application/sdp"
    assert "Supported" in response.headers
    assert ";tag=" in (response.headers.get("To") or "")


@pytest.mark.parametrize(
    ("data", "status", "header"),
    [
        (raw("FOO"), 501, "Allow"),  # §8.2.1
        (raw("SUBSCRIBE", "Event: dialog"), 405, "Allow"),  # known, not allowed
        (raw("INVITE", "Require: 100rel, timer"), 420, "Unsupported"),  # §8.2.2.3
        (raw("BYE", to_tag="unknown"), 481, None),  # §12.2.2
        (raw("BYE"), 481, None),  # out of dialog
        (raw("INVITE", "Content-Type: text/plain", body="hello"), 415, "Accept"),  # §8.2.3
        (raw("INVITE").replace(b"Max-Forwards: 70", b"Max-Forwards: 0"), 483, None),
        (raw("CANCEL"), 481, None),  # §9.2: nothing to cancel
    ],
)
def test_refusals(data: bytes, status: int, header: str | None) -> None:
    ua = make_ua(5060)
    response = only_response(ua, data)
    assert response.status == status
    if header is not None:
        assert response.headers.get(header)
    if status == 420:
        assert response.headers.get_all("Unsupported") == ["100rel", "timer"]
    assert ua.next_event() is None


def test_malformed_request_answered_with_parser_status_never_ack() -> None:
    ua = make_ua(5060)
    bad = raw("OPTIONS").replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    response = only_response(ua, bad)
    assert response.status == 505
    ua.receive_datagram(raw("ACK").replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), PEER, 0.0)
    assert responses(ua) == []
    ua.receive_datagram(b"\x00garbage\r\n\r\n", PEER, 0.0)
    assert responses(ua) == []
    assert ua.dropped == 3


def test_sipp_style_invite_compact_headers_multiple_via() -> None:
    ua = make_ua(5060)
    sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
    data = (
        "INVITE sip:ivr@127.0.0.1:5060 SIP/2.0\r\n"
        "v: SIP/2.0/UDP 192.168.1.5:5062;branch=z9hG4bK-sipp-1;rport\r\n"
        "v: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-proxy-1\r\n"
        "f: sipp <sip:sipp@10.0.0.9:5062>;tag=1\r\n"
        "t: <sip:ivr@127.0.0.1:5060>\r\n"
        "i: 1-sipp@10.0.0.9\r\n"
        "CSeq: 1 INVITE\r\n"
        "m: <sip:sipp@10.0.0.9:5062>\r\n"
        "Record-Route: <sip:proxy.example;lr>\r\n"
        "Max-Forwards: 70\r\n"
        "c: application/sdp\r\n"
        f"l: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()
    ua.receive_datagram(data, PEER, 0.0)
    event = ua.next_event()
    assert isinstance(event, IncomingCall) and event.offer_sdp == sdp.encode()
    ua.receive_datagram(data, PEER, 0.1)  # retransmission: no second IncomingCall
    assert ua.next_event() is None
    ua.answer("1-sipp@10.0.0.9", SDP_B, 0.2)
    sent = responses(ua, 0.2)
    assert [r.status for r, _ in sent] == [100, 100, 200]
    # RFC 3581: to the source address and port, received= and rport= filled in
    assert {addr for _, addr in sent} == {PEER}
    ok = sent[-1][0]
    vias = ok.headers.get_all("Via")
    assert vias[0] == "SIP/2.0/UDP 192.168.1.5:5062;branch=z9hG4bK-sipp-1;rport=5062;received=10.0.0.9"
    assert vias[1] == "SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-proxy-1"
    assert ok.headers.get_all("Record-Route") == ["<sip:proxy.example;lr>"]  # §12.1.1
    assert ok.headers.get("Contact") == "<sip:ivr@127.0.0.1:5060>"
    # the ACK is the caller's; BYE from us goes through the recorded route (loose routing)
    to_tag = (ok.headers.get("To") or "").split("tag=")[1]
    ack = raw(
        "ACK", branch="z9hG4bK-ack-1", to_tag=to_tag, call_id="1-sipp@10.0.0.9", uri="sip:ivr@127.0.0.1"
    )
    ack = ack.replace(
        b"From: sipp <sip:sipp@10.0.0.9:5062>;tag=caller-tag", b"From: <sip:sipp@10.0.0.9>;tag=1"
    )
    ua.receive_datagram(ack, PEER, 0.3)
    assert ua.next_event() == CallConfirmed("1-sipp@10.0.0.9")
    ua.hangup("1-sipp@10.0.0.9", 0.4)
    ((bye_data, bye_addr),) = ua.datagrams_to_send()
    bye = parse_message(bye_data)
    assert isinstance(bye, SipRequest) and bye.uri == "sip:sipp@10.0.0.9:5062"
    assert bye.headers.get("Route") == "<sip:proxy.example;lr>"
    assert bye_addr == ("proxy.example", 5060)


def test_merged_request_gets_482() -> None:
    ua = make_ua(5060)
    ua.receive_datagram(raw("INVITE", branch="z9hG4bK-a"), PEER, 0.0)
    assert isinstance(ua.next_event(), IncomingCall)
    responses(ua)
    response = only_response(ua, raw("INVITE", branch="z9hG4bK-b"))  # §8.2.2.2, forked and merged
    assert response.status == 482
    assert ua.next_event() is None


def test_lower_cseq_in_dialog_gets_500() -> None:
    ua = make_ua(5060)
    ua.receive_datagram(raw("INVITE", cseq=5), PEER, 0.0)
    ua.next_event()
    ua.answer("raw-call-1@10.0.0.9", SDP_B, 0.0)
    to_tag = (responses(ua)[-1][0].headers.get("To") or "").split("tag=")[1]
    ua.receive_datagram(raw("ACK", branch="z9hG4bK-ack", cseq=5, to_tag=to_tag), PEER, 0.1)
    assert ua.next_event() == CallConfirmed("raw-call-1@10.0.0.9")
    assert only_response(ua, raw("INFO", branch="z9hG4bK-i1", cseq=4, to_tag=to_tag)).status == 500  # §12.2.2
    assert only_response(ua, raw("INFO", branch="z9hG4bK-i2", cseq=6, to_tag=to_tag)).status == 200


def test_unmatched_response_dropped() -> None:
    ua = make_ua(5060)
    data = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnope\r\nFrom: <sip:a@b>;tag=1\r\n"
    )
    data += b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ua.receive_datagram(data, PEER, 0.0)
    assert ua.datagrams_to_send() == []
    assert ua.dropped == 1


def test_max_calls_gives_503() -> None:
    ua = make_ua(5060, max_calls=1)
    ua.receive_datagram(raw("INVITE", branch="z9hG4bK-1", call_id="c1"), PEER, 0.0)
    ua.receive_datagram(raw("INVITE", branch="z9hG4bK-2", call_id="c2"), PEER, 0.0)
    assert [r.status for r, _ in responses(ua)] == [100, 100, 503]
    assert ua.active_calls == 1


def test_calls_per_source_are_limited_and_other_sources_still_get_through() -> None:
    ua = make_ua(5060, max_calls_per_source=1)
    ua.receive_datagram(raw("INVITE", branch="z9hG4bK-1", call_id="c1"), PEER, 0.0)
    ua.receive_datagram(raw("INVITE", branch="z9hG4bK-2", call_id="c2"), PEER, 0.0)  # same address
    ua.receive_datagram(raw("INVITE", branch="z9hG4bK-3", call_id="c3"), ("10.0.0.10", 5062), 0.0)
    sent = responses(ua)
    assert [r.status for r, _ in sent] == [100, 100, 503, 100]
    assert sent[2][0].reason == "Too Many Calls From This Address"
    assert sent[2][0].headers.get("Retry-After") == "5"
    assert ua.active_calls == 2


# --- registration (RFC 3261 §10, §22) --------------------------------------------------------


class FakeRegistrar:
    """Challenges every REGISTER without valid credentials, then grants the binding."""

    def __init__(self, password: str, grant: int = 120) -> None:
        self.password = password
        self.grant = grant
        self.seen: list[SipRequest] = []

    def handle(self, data: bytes) -> bytes:
        from ivr.sip.digest import build_challenge, verify
        from ivr.sip.message import make_response

        request = parse_message(data)
        assert isinstance(request, SipRequest) and request.method == "REGISTER"
        self.seen.append(request)
        auth = request.headers.get("Authorization")
        if auth is None or not verify(auth, "REGISTER", self.password, "pbx", "nonce-1", uri=request.uri):
            response = make_response(request, 401, to_tag="reg")
            response.headers.add("WWW-Authenticate", build_challenge("pbx", "nonce-1"))
            return bytes(response)
        response = make_response(request, 200, to_tag="reg")
        expires = int(request.headers.get("Expires") or "0")
        if expires:
            response.headers.add("Contact", f"{request.headers.get('Contact')};expires={self.grant}")
        return bytes(response)


def exchange(ua: UserAgent, registrar: FakeRegistrar, now: float) -> None:
    while out := ua.datagrams_to_send():
        for data, addr in out:
            assert addr == ("127.0.0.1", 5090)
            ua.receive_datagram(registrar.handle(data), addr, now)


def test_register_with_digest_refresh_and_unregister() -> None:
    from ivr.sip.events import RegistrationChanged

    ua = make_ua(5060)
    registrar = FakeRegistrar("s3cret")
    aor = ua.register(("127.0.0.1", 5090), "1000", "pbx.example", "s3cret", 3600, 0.0)
    assert aor == "sip:1000@pbx.example"
    exchange(ua, registrar, 0.0)
    assert ua.next_event() == RegistrationChanged(aor, True, 120, 200)
    first, second = registrar.seen
    assert first.headers.get("CSeq") == "1 REGISTER" and second.headers.get("CSeq") == "2 REGISTER"
    assert first.headers.get("Call-ID") == second.headers.get("Call-ID")  # §10.2
    # refresh before expiry: halfway for a short binding
    timer = ua.get_timer()
    assert timer is not None
    ua.handle_timer(timer)  # transaction Timer K may come first
    while (timer := ua.get_timer()) is not None and timer < 60.0:
        ua.handle_timer(timer)
    assert timer == 60.0
    ua.handle_timer(60.0)
    exchange(ua, registrar, 60.0)
    assert ua.next_event() == RegistrationChanged(aor, True, 120, 200)
    ua.close(61.0)
    exchange(ua, registrar, 61.0)
    assert ua.next_event() == RegistrationChanged(aor, False, 0, 200)
    assert registrar.seen[-1].headers.get("Expires") == "0"


def test_register_wrong_password_fails() -> None:
    from ivr.sip.events import RegistrationChanged

    ua = make_ua(5060)
    aor = ua.register(("127.0.0.1", 5090), "1000", "pbx.example", "wrong", 3600, 0.0)
    exchange(ua, FakeRegistrar("s3cret"), 0.0)
    assert ua.next_event() == RegistrationChanged(aor, False, 0, 401)


def test_register_timeout() -> None:
    from ivr.sip.events import RegistrationChanged

    ua = make_ua(5060)
    aor = ua.register(("127.0.0.1", 5090), "1000", "pbx.example", "pw", 3600, 0.0)
    sends = 0
    while (timer := ua.get_timer()) is not None:
        sends += len(ua.datagrams_to_send())
        ua.handle_timer(timer)
    assert ua.next_event() == RegistrationChanged(aor, False, 0, 408)  # Timer F
    assert sends == 11  # Timer E: 0.5, 1, 2, 4, 4, ... until 64*T1


# --- robustness: nothing raises out of the core -----------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SEEDS = [
    raw("INVITE", "Content-Type: application/sdp", body=SDP_A.decode()),
    raw("OPTIONS"),
    raw("BYE", to_tag="t"),
    raw("CANCEL"),
    raw("ACK", to_tag="t"),
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
    b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContact: <sip:c@d>\r\nContent-Length: 0\r\n\r\n",
]


def _internal_errors(ua: UserAgent) -> list[str]:
    from ivr.sip.events import MessageDropped

    errors = []
    while (event := ua.next_event()) is not None:
        if isinstance(event, MessageDropped) and event.reason.startswith("error"):
            errors.append(event.reason)
    return errors


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    ua = make_ua(5060)
    ua.receive_datagram(data, PEER, 0.0)
    ua.handle_timer(100.0)
    assert _internal_errors(ua) == []


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 6), st.binary(max_size=8)), max_size=6),
)
def test_mutated_messages_never_raise(seed: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    data = bytearray(seed)
    for pos, cut, insert in edits:
        pos %= len(data) + 1
        data[pos : pos + cut] = insert
    ua = make_ua(5060)
    ua.receive_datagram(raw("INVITE", branch="z9hG4bK-x"), PEER, 0.0)  # some state to hit
    ua.receive_datagram(bytes(data), PEER, 0.1)
    ua.answer("raw-call-1@10.0.0.9", SDP_B, 0.2)
    ua.receive_datagram(bytes(data), PEER, 0.3)
    ua.handle_timer(100.0)
    assert _internal_errors(ua) == []


def test_uas_hangup_before_answer_sends_480() -> None:
    net, uac, uas, call_id = setup_call(answer=False)
    uas.hangup(call_id, net.now)
    net.pump()
    assert net.of(uas)[-1] == CallEnded(call_id, "hangup", False, 480)
    assert net.of(uac)[-1] == OutgoingFailed(call_id, 480, "Temporarily Unavailable")
    assert net.sent(uac, "ACK")  # the client transaction ACKs the 480


def test_options_in_dialog_and_keepalive_crlf() -> None:
    net, uac, uas, call_id = setup_call()
    uas.receive_datagram(b"\r\n\r\n", ("127.0.0.1", 5070), net.now)
    assert uas.datagrams_to_send() == [] and uas.dropped == 0
    dialog = uac._calls[call_id].dialog
    assert dialog is not None
    options = dialog.create_request("OPTIONS", uac._via())
    uas.receive_datagram(bytes(options), ("127.0.0.1", 5070), net.now)
    ((data, _addr),) = uas.datagrams_to_send()
    assert data.startswith(b"SIP/2.0 200 OK")
