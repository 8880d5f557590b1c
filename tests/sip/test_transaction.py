"""RFC 3261 §17 transaction machines with a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.sip.message import Headers, SipRequest, SipResponse, make_response, parse_message
from ivr.sip.transaction import (
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    ClientTransaction,
    Input,
    Kind,
    ServerTransaction,
    State,
    Timer,
    TimerValues,
    TransactionStateError,
    client_key_for_response,
    server_key,
)

ADDR = ("10.0.0.1", 5060)


def request(method: str = "INVITE", branch: str = "z9hG4bKabc", host: str = "10.0.0.1:5060") -> SipRequest:
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP {host};branch={branch}")
    h.add("Max-Forwards", "70")
    h.add("From", "<sip:a@10.0.0.1>;tag=f1")
    h.add("To", "<sip:b@10.0.0.2>")
    h.add("Call-ID", "call-1")
    h.add("CSeq", f"1 {method}")
    h.add("Route", "<sip:proxy;lr>")
    return SipRequest(method, "sip:b@10.0.0.2", h)


def run_timers(tx: ClientTransaction | ServerTransaction, until: float) -> list[tuple[float, Timer]]:
    """Fire the transaction's timers in order up to `until`; returns what fired."""
    fired = []
    while tx.timers:
        timer, when = min(tx.timers.items(), key=lambda item: item[1])
        if when > until:
            break
        tx.handle_timer(timer, when)
        fired.append((when, timer))
    return fired


def test_invite_server_non_2xx_timer_g_h() -> None:
    tx = ServerTransaction(request(), ADDR, 0.0)
    assert tx.state is State.PROCEEDING
    tx.send_response(make_response(tx.request, 100), 0.0)
    tx.send_response(make_response(tx.request, 486, to_tag="t"), 0.0)
    assert tx.state is State.COMPLETED
    fired = run_timers(tx, 100.0)
    g = [when for when, timer in fired if timer is Timer.G]
    assert g == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # doubling, capped at T2
    assert fired[-1] == (32.0, Timer.H)
    assert tx.state is State.TERMINATED and tx.timed_out
    assert len(tx.outbox) == 2 + len(g)


def test_invite_server_ack_confirms_then_timer_i() -> None:
    tx = ServerTransaction(request(), ADDR, 0.0)
    tx.send_response(make_response(tx.request, 404, to_tag="t"), 0.0)
    ack = request("ACK")
    assert tx.receive_request(ack, 0.2) is False  # absorbed, not for the TU
    assert tx.state is State.CONFIRMED
    assert set(tx.timers) == {Timer.I}
    assert tx.receive_request(ack, 0.3) is False
    run_timers(tx, 10.0)
    assert tx.state is State.TERMINATED and not tx.timed_out


def test_invite_server_retransmission_resends_last_response() -> None:
    tx = ServerTransaction(request(), ADDR, 0.0)
    tx.send_response(make_response(tx.request, 100), 0.0)
    tx.outbox.clear()
    tx.receive_request(request(), 0.1)
    assert [parse_message(d).status for d in tx.outbox] == [100]  # type: ignore[union-attr]
    tx.send_response(make_response(tx.request, 200, to_tag="t"), 0.2)
    tx.outbox.clear()
    tx.receive_request(request(), 0.3)  # RFC 6026 Accepted: absorbed, the core resends the 2xx
    assert tx.outbox == [] and tx.state is State.ACCEPTED
    run_timers(tx, 100.0)
    assert tx.state is State.TERMINATED


def test_non_invite_server_timer_j() -> None:
    tx = ServerTransaction(request("OPTIONS"), ADDR, 0.0)
    assert tx.state is State.TRYING
    tx.receive_request(request("OPTIONS"), 0.1)
    assert tx.outbox == []  # Trying: nothing to resend yet
    tx.send_response(make_response(tx.request, 200, to_tag="t"), 0.2)
    tx.receive_request(request("OPTIONS"), 0.3)
    assert len(tx.outbox) == 2
    assert run_timers(tx, 100.0) == [(32.2, Timer.J)]
    with pytest.raises(TransactionStateError):
        tx.send_response(make_response(tx.request, 200), 40.0)


def test_invite_client_timer_a_then_b() -> None:
    tx = ClientTransaction(request(), ADDR, 0.0)
    fired = run_timers(tx, 100.0)
    assert [w for w, t in fired if t is Timer.A] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert fired[-1] == (32.0, Timer.B) and tx.timed_out
    assert len(tx.outbox) == 7


def test_invite_client_non_2xx_builds_ack_and_waits_timer_d() -> None:
    tx = ClientTransaction(request(), ADDR, 0.0)
    tx.outbox.clear()
    assert tx.receive_response(make_response(tx.request, 180, to_tag="t"), 0.1)
    assert tx.state is State.PROCEEDING and Timer.A not in tx.timers
    final = make_response(tx.request, 503, to_tag="t")
    assert tx.receive_response(final, 0.2) is True
    assert tx.receive_response(final, 0.3) is False  # retransmission: ACK again, not to the TU
    ack = parse_message(tx.outbox[0])
    assert tx.outbox[0] == tx.outbox[1]
    assert isinstance(ack, SipRequest) and ack.method == "ACK"
    assert ack.headers.get("CSeq") == "1 ACK"
    assert ack.headers.get("Via") == tx.request.headers.get("Via")  # same branch (§17.1.1.3)
    assert ack.headers.get("To") == "<sip:b@10.0.0.2>;tag=t"
    assert ack.headers.get("Route") == "<sip:proxy;lr>"
    assert run_timers(tx, 100.0) == [(32.2, Timer.D)]


def test_invite_client_2xx_accepted_passes_retransmissions_up() -> None:
    tx = ClientTransaction(request(), ADDR, 0.0)
    ok = make_response(tx.request, 200, to_tag="t")
    assert tx.receive_response(ok, 0.1) and tx.state is State.ACCEPTED
    assert tx.receive_response(ok, 0.6)  # the TU re-ACKs (§13.2.2.4)
    assert run_timers(tx, 100.0) == [(32.1, Timer.M)]


def test_non_invite_client_timer_e_capped_f() -> None:
    tx = ClientTransaction(request("BYE"), ADDR, 0.0)
    fired = run_timers(tx, 100.0)
    e = [w for w, t in fired if t is Timer.E]
    assert e == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert fired[-1] == (32.0, Timer.F) and tx.timed_out


def test_non_invite_client_proceeding_retransmits_at_t2_then_k() -> None:
    tx = ClientTransaction(request("BYE"), ADDR, 0.0)
    tx.receive_response(make_response(tx.request, 100), 0.1)
    assert tx.state is State.PROCEEDING
    tx.handle_timer(Timer.E, 0.5)
    assert tx.timers[Timer.E] == 4.5  # §17.1.2.2: T2 in Proceeding
    assert tx.receive_response(make_response(tx.request, 200, to_tag="t"), 1.0)
    assert tx.receive_response(make_response(tx.request, 200, to_tag="t"), 1.1) is False
    assert run_timers(tx, 100.0) == [(6.0, Timer.K)]


def test_reliable_transport_skips_retransmit_timers() -> None:
    tx = ClientTransaction(request(), ADDR, 0.0, reliable=True)
    assert set(tx.timers) == {Timer.B}
    tx.receive_response(make_response(tx.request, 486, to_tag="t"), 0.1)
    assert tx.timers == {Timer.D: 0.1}
    server = ServerTransaction(request(), ADDR, 0.0, reliable=True, values=TimerValues(t1=0.1))
    server.send_response(make_response(server.request, 486, to_tag="t"), 0.0)
    assert set(server.timers) == {Timer.H} and server.timers[Timer.H] == pytest.approx(6.4)


def test_matching_keys() -> None:
    invite = request()
    assert server_key(invite) == ("z9hG4bKabc", "10.0.0.1:5060", "INVITE")
    assert server_key(request("ACK")) == server_key(invite)  # ACK for non-2xx (§17.2.3)
    assert server_key(request("CANCEL")) != server_key(invite)  # CANCEL is its own transaction
    assert server_key(request("CANCEL"), method="INVITE") == server_key(invite)  # §9.2
    assert server_key(request(host="10.0.0.9:5060")) != server_key(invite)  # sent-by counts
    legacy = request(branch="old-style")
    assert server_key(legacy)[0].startswith("rfc2543:")
    response = make_response(invite, 180, to_tag="t")
    assert client_key_for_response(response) == ("z9hG4bKabc", "INVITE")
    assert ClientTransaction(invite, ADDR, 0.0).key == client_key_for_response(response)


NETWORK_INPUTS = [Input.REQUEST, Input.ACK, Input.RECV_1XX, Input.RECV_2XX, Input.RECV_FINAL]


@given(st.sampled_from(list(Kind)), st.lists(st.sampled_from([*NETWORK_INPUTS, *Timer]), max_size=20))
def test_every_network_input_in_every_state_is_safe(kind: Kind, inputs: list[Input | Timer]) -> None:
    """h2-style: any sequence of network inputs and timer firings is absorbed, never a crash."""
    method = "INVITE" if kind in (Kind.INVITE_CLIENT, Kind.INVITE_SERVER) else "OPTIONS"
    server = kind in (Kind.INVITE_SERVER, Kind.NON_INVITE_SERVER)
    tx: ClientTransaction | ServerTransaction
    tx = (
        ServerTransaction(request(method), ADDR, 0.0)
        if server
        else ClientTransaction(request(method), ADDR, 0.0)
    )
    if server and kind is Kind.INVITE_SERVER:
        tx.send_response(make_response(tx.request, 480, to_tag="t"), 0.0)  # type: ignore[union-attr]
    now = 0.0
    for item in inputs:
        now += 1.0
        if isinstance(item, Timer):
            tx.handle_timer(item, now)
        elif isinstance(tx, ServerTransaction):
            tx.receive_request(request("ACK" if item is Input.ACK else method), now)
        else:
            status = {Input.RECV_1XX: 180, Input.RECV_2XX: 200}.get(item, 404)
            tx.receive_response(make_response(tx.request, status, to_tag="t"), now)
        assert tx.state in State


def test_tables_use_rfc_states_only() -> None:
    assert {s for s, _ in INVITE_SERVER} <= {
        State.PROCEEDING,
        State.ACCEPTED,
        State.COMPLETED,
        State.CONFIRMED,
    }
    assert {s for s, _ in NON_INVITE_SERVER} <= {State.TRYING, State.PROCEEDING, State.COMPLETED}
    assert {s for s, _ in INVITE_CLIENT} <= {State.CALLING, State.PROCEEDING, State.ACCEPTED, State.COMPLETED}
    assert {s for s, _ in NON_INVITE_CLIENT} <= {State.TRYING, State.PROCEEDING, State.COMPLETED}


def test_response_type_check() -> None:
    assert isinstance(make_response(request(), 200), SipResponse)
