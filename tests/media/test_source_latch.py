"""SourceLatch on its own: addresses and times in, verdicts out (the time is a plain number)."""

from __future__ import annotations

from ivr.media.source_latch import ACCEPTED, HELD_BACK, PROBATION_SLACK, RELATCHED, SourceLatch

SDP = ("10.0.0.2", 5000)  # where the SDP says the caller is
NAT = ("192.0.2.7", 30000)  # where a NAT'd caller's packets come from
EVIL = ("10.6.6.6", 6666)


def test_the_first_packet_from_the_signalled_address_latches_at_once() -> None:
    latch = SourceLatch(SDP)
    assert latch.latched is None and latch.send_address == SDP
    assert latch.accept(SDP, 1.0) == ACCEPTED
    assert latch.latched == SDP and latch.send_address == SDP


def test_without_an_sdp_address_the_first_source_latches() -> None:
    latch = SourceLatch(None)  # late offer: no address until the caller sends
    assert latch.send_address is None and not latch.can_send(0.0)
    assert latch.accept(NAT, 1.0) == ACCEPTED
    assert latch.latched == NAT and latch.can_send(1.0)


def test_a_foreign_source_waits_the_grace_then_latches() -> None:
    latch = SourceLatch(SDP, foreign_grace=0.5)
    assert latch.accept(NAT, 10.0) == HELD_BACK
    assert latch.accept(NAT, 10.49) == HELD_BACK
    assert latch.latched is None
    assert latch.accept(NAT, 10.5) == ACCEPTED  # the SDP's address stayed silent: a NAT'd caller
    assert latch.latched == NAT and latch.send_address == NAT


def test_the_signalled_address_wins_the_race_against_a_stranger() -> None:
    latch = SourceLatch(SDP)
    assert latch.accept(EVIL, 1.0) == HELD_BACK
    assert latch.accept(SDP, 1.01) == ACCEPTED
    assert latch.accept(EVIL, 1.02) == HELD_BACK
    assert latch.latched == SDP


def test_the_signalled_address_takes_the_latch_back_at_once() -> None:
    latch = SourceLatch(SDP, foreign_grace=0.5)
    latch.accept(EVIL, 1.0)
    assert latch.accept(EVIL, 1.6) == ACCEPTED  # the caller was silent past the grace
    assert latch.accept(SDP, 1.61) == RELATCHED  # RTP bleed ends with the caller's first packet
    assert latch.latched == SDP


def test_another_source_takes_over_only_after_the_latched_one_falls_silent() -> None:
    latch = SourceLatch(SDP, timeout=2.0, foreign_grace=0.5)
    latch.accept(NAT, 10.0)
    latch.accept(NAT, 10.5)
    latch.accept(NAT, 11.0)
    assert latch.accept(EVIL, 12.9) == HELD_BACK  # 1.9 s of silence: not enough
    assert latch.accept(EVIL, 13.0) == HELD_BACK  # exactly the timeout: still not
    rebound = ("192.0.2.7", 30001)
    assert latch.accept(rebound, 13.01) == RELATCHED  # NAT rebinding after more than 2 s
    assert latch.latched == rebound
    assert latch.accept(rebound, 13.02) == ACCEPTED


def test_held_back_packets_do_not_keep_the_latch_alive() -> None:
    latch = SourceLatch(SDP, timeout=2.0)
    latch.accept(SDP, 0.0)
    for i in range(20):
        assert latch.accept(EVIL, 0.1 * i) == HELD_BACK  # up to 1.9 s
    assert latch.accept(NAT, 2.5) == RELATCHED  # the caller's silence counts from 0.0


def test_sending_waits_while_a_foreign_source_is_on_probation() -> None:
    latch = SourceLatch(SDP, foreign_grace=0.5)
    assert latch.can_send(1.0)  # nothing heard: towards the SDP's address
    latch.accept(NAT, 1.0)
    assert not latch.can_send(1.3)  # most likely a NAT'd caller: its prompt must not go astray
    assert not latch.can_send(1.0 + 0.5 + PROBATION_SLACK - 0.01)
    assert latch.can_send(1.0 + 0.5 + PROBATION_SLACK)  # nobody latched: back to the SDP's address
    latch.accept(NAT, 1.7)
    assert latch.latched == NAT and latch.can_send(1.7)


def test_moving_the_media_latches_afresh() -> None:
    latch = SourceLatch(SDP)
    latch.accept(SDP, 1.0)
    latch.move(SDP)  # the same address re-offered: the latch stays
    assert latch.latched == SDP
    moved = ("10.0.0.9", 7000)
    latch.move(moved)
    assert latch.latched is None and latch.remote == moved and latch.send_address == moved
    assert latch.accept(moved, 2.0) == ACCEPTED
