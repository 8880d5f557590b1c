from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.media.jitter import JitterBuffer


def payload(seq: int) -> bytes:
    # A 20 ms G.711 payload (160 bytes) that says which packet it is in its first two bytes.
    return seq.to_bytes(2, "big") + bytes(158)


def push(jb: JitterBuffer, seq: int, now: float = 0.0) -> None:
    jb.push(seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, payload(seq & 0xFFFF), now)


def drain(jb: JitterBuffer, n: int) -> list[int | None]:
    out: list[int | None] = []
    for _ in range(n):
        frame = jb.pop_frame()
        out.append(None if frame is None else int.from_bytes(frame[:2], "big"))
    return out


def test_prefill_then_in_order() -> None:
    jb = JitterBuffer(depth_frames=3)
    push(jb, 10)
    assert jb.pop_frame() is None
    push(jb, 11)
    assert jb.pop_frame() is None
    push(jb, 12)
    assert drain(jb, 3) == [10, 11, 12]
    assert jb.stats.lost == 0
    assert jb.stats.received == 3


def test_reorders() -> None:
    jb = JitterBuffer(depth_frames=3)
    for seq in (1, 3, 2, 4, 6, 5):
        push(jb, seq)
    assert drain(jb, 6) == [1, 2, 3, 4, 5, 6]
    assert jb.stats.reordered == 2
    assert jb.stats.lost == 0


def test_first_packet_overtaken_during_prefill() -> None:
    jb = JitterBuffer(depth_frames=2)
    push(jb, 6)
    push(jb, 5)
    assert drain(jb, 2) == [5, 6]


def test_loss_counted_and_playout_moves_on() -> None:
    jb = JitterBuffer(depth_frames=2)
    for seq in (1, 2, 4, 5):
        push(jb, seq)
    assert drain(jb, 5) == [1, 2, None, 4, 5]
    assert jb.stats.lost == 1


def test_duplicates_dropped() -> None:
    jb = JitterBuffer(depth_frames=1)
    push(jb, 1)
    push(jb, 1)
    assert drain(jb, 1) == [1]
    push(jb, 1)  # after it has been played, too
    push(jb, 2)
    assert drain(jb, 2) == [2, None]
    assert jb.stats.duplicate == 2


def test_too_late_dropped() -> None:
    jb = JitterBuffer(depth_frames=1)
    push(jb, 1)
    push(jb, 3)
    assert drain(jb, 3) == [1, None, 3]
    push(jb, 2)  # its slot has already been played as lost
    assert jb.stats.late == 1
    assert jb.stats.lost == 1
    assert jb.pop_frame() is None


def test_underrun_does_not_count_loss_and_refills() -> None:
    jb = JitterBuffer(depth_frames=2)
    push(jb, 1)
    push(jb, 2)
    assert drain(jb, 5) == [1, 2, None, None, None]
    assert jb.stats.lost == 0
    assert jb.stats.underruns >= 1
    push(jb, 3)
    assert jb.pop_frame() is None  # prefilling again
    push(jb, 4)
    assert drain(jb, 2) == [3, 4]


def test_no_audio_slots_are_not_loss() -> None:
    jb = JitterBuffer(depth_frames=1)
    push(jb, 1)
    jb.push(2, 320, None, 0.0)
    push(jb, 3)
    assert drain(jb, 3) == [1, None, 3]
    assert jb.stats.lost == 0


def test_sequence_wraparound() -> None:
    jb = JitterBuffer(depth_frames=2)
    for seq in (65534, 0, 65535, 1):
        push(jb, seq)
    assert drain(jb, 4) == [65534, 65535, 0, 1]
    assert jb.stats.lost == 0


@pytest.mark.parametrize("jump", [101, 5000, -101, -30000])
def test_huge_jump_resets_instead_of_stalling(jump: int) -> None:
    jb = JitterBuffer(depth_frames=2)
    for seq in range(1000, 1005):
        push(jb, seq)
    assert drain(jb, 2) == [1000, 1001]
    start = (1004 + jump) & 0xFFFF
    push(jb, start)
    push(jb, start + 1)
    assert drain(jb, 2) == [start, (start + 1) & 0xFFFF]
    assert jb.stats.resets == 1


def test_far_ahead_within_reset_limit_moves_playout() -> None:
    jb = JitterBuffer(depth_frames=1, max_frames=10)
    push(jb, 0)
    push(jb, 1)
    push(jb, 30)  # 30 ahead of playout, but the buffer holds 10
    assert jb.stats.overflow + jb.stats.lost >= 20
    frames = [f for f in drain(jb, 10) if f is not None]
    assert frames == [30]


def test_jitter_estimate() -> None:
    steady = JitterBuffer()
    bumpy = JitterBuffer()
    for i in range(50):
        steady.push(i, i * 160, b"x", i * 0.02)
        bumpy.push(i, i * 160, b"x", i * 0.02 + (0.015 if i % 2 else 0.0))
    assert steady.stats.jitter == pytest.approx(0.0, abs=1e-6)
    assert bumpy.stats.jitter > 50  # timestamp units: ~15 ms of alternation


def test_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(depth_frames=0)
    with pytest.raises(ValueError):
        JitterBuffer(depth_frames=5, max_frames=4)


@given(st.permutations(list(range(20))), st.integers(0, 0xFFFF))
def test_any_small_permutation_plays_in_order(order: list[int], base: int) -> None:
    jb = JitterBuffer(depth_frames=20, max_frames=50)
    for offset in order:
        push(jb, base + offset)
    assert drain(jb, 20) == [(base + i) & 0xFFFF for i in range(20)]
    assert jb.stats.lost == 0 and jb.stats.late == 0
