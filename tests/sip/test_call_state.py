"""The UA core's call state machine: every (state, input) pair, and the table in a real call."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.sip import uacore
from ivr.sip.events import MessageDropped
from ivr.sip.message import SipRequest, SipResponse
from ivr.sip.uacore import CALL_TRANSITIONS, CallInput, CallState, CallStateError, next_call_state

from .ua_harness import SDP_A, SDP_B, Net, make_ua

S = CallState

# Written out again on purpose: the test states the machine, the module implements it.
EXPECTED = {
    (S.INCOMING, CallInput.SEND_2XX): S.WAITING_ACK,
    (S.INCOMING, CallInput.END): S.ENDED,
    (S.CALLING, CallInput.RECV_2XX): S.CONFIRMED,
    (S.CALLING, CallInput.END): S.ENDED,
    (S.WAITING_ACK, CallInput.RECV_ACK): S.CONFIRMED,
    (S.WAITING_ACK, CallInput.END): S.ENDED,
    (S.CONFIRMED, CallInput.END): S.ENDED,
}
ALL_PAIRS = list(itertools.product(CallState, CallInput))


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS, ids=[f"{s.name}-{e.name}" for s, e in ALL_PAIRS])
def test_every_pair_moves_as_the_table_says_or_is_a_state_error(state: CallState, event: CallInput) -> None:
    expected = EXPECTED.get((state, event))
    if expected is not None:
        assert next_call_state(state, event) is expected
        return
    with pytest.raises(CallStateError) as info:
        next_call_state(state, event)
    assert (info.value.state, info.value.event) == (state, event)
    assert state.value in str(info.value) and event.value in str(info.value)


def test_the_table_is_exactly_the_expected_machine() -> None:
    assert CALL_TRANSITIONS == EXPECTED


def test_every_live_state_can_end_and_ended_has_no_way_out() -> None:
    live = [state for state in CallState if state is not S.ENDED]
    assert all(CALL_TRANSITIONS[(state, CallInput.END)] is S.ENDED for state in live)
    assert not [pair for pair in CALL_TRANSITIONS if pair[0] is S.ENDED]


def test_every_state_is_reachable_from_a_new_call() -> None:
    reached = {S.INCOMING, S.CALLING}
    frontier = list(reached)
    while frontier:
        state = frontier.pop()
        for (source, _), target in CALL_TRANSITIONS.items():
            if source is state and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(CallState)


@given(st.sampled_from([S.INCOMING, S.CALLING]), st.lists(st.sampled_from(list(CallInput)), max_size=8))
def test_any_sequence_of_inputs_follows_the_table_or_stops_with_an_error(
    start: CallState, events: list[CallInput]
) -> None:
    state = start
    for event in events:
        try:
            following = next_call_state(state, event)
        except CallStateError:
            assert (state, event) not in CALL_TRANSITIONS
            continue
        assert state is not S.ENDED
        state = following


def _drop_acks(message: SipRequest | SipResponse, src: object, dst: object) -> bool:
    return isinstance(message, SipRequest) and message.method == "ACK"


def test_a_call_walks_the_table_on_both_sides() -> None:
    uac, uas = make_ua(5070), make_ua(5060)
    net = Net(uac, uas)
    call_id = uac.invite("sip:ivr@127.0.0.1:5060", SDP_A, net.now)
    assert uac.call_state(call_id) is S.CALLING
    net.pump()
    assert uas.call_state(call_id) is S.INCOMING
    uas.answer(call_id, SDP_B, net.now)
    net.pump(drop=_drop_acks)
    assert (uac.call_state(call_id), uas.call_state(call_id)) == (S.CONFIRMED, S.WAITING_ACK)
    net.advance(0.5)  # the retransmitted 2xx is ACKed again, and this ACK gets through
    assert uas.call_state(call_id) is S.CONFIRMED
    uac.hangup(call_id, net.now)
    net.pump()
    assert uac.call_state(call_id) is None and uas.call_state(call_id) is None  # ended, forgotten


def test_a_missing_entry_met_by_network_input_is_a_drop_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    uac, uas = make_ua(5070), make_ua(5060)
    net = Net(uac, uas)
    call_id = uac.invite("sip:ivr@127.0.0.1:5060", SDP_A, net.now)
    net.pump()
    uas.answer(call_id, SDP_B, net.now)
    # A core that forgot how the ACK confirms a call: the ACK must not raise into the shell.
    monkeypatch.delitem(uacore.CALL_TRANSITIONS, (S.WAITING_ACK, CallInput.RECV_ACK))
    net.pump()
    drops = [event for event in net.of(uas) if isinstance(event, MessageDropped)]
    assert [event.reason.split(":")[1].strip() for event in drops] == ["CallStateError"]
    assert uas.call_state(call_id) is S.WAITING_ACK  # a refused move leaves the state as it was
