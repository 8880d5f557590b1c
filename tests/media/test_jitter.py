from __future__ import annotations

import pytest
from hypothesis import assume, given
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


# -- RFC 3550 A.1 probation -----------------------------------------------------------------------


@pytest.mark.parametrize("jump", [101, 5000, -101, -30000])
def test_one_stray_packet_does_not_reset(jump: int) -> None:
    jb = JitterBuffer(depth_frames=2)
    for seq in range(1000, 1004):
        push(jb, seq)
    assert drain(jb, 2) == [1000, 1001]
    push(jb, 1003 + jump)  # a stray: a very old duplicate, a packet from a dead stream
    for seq in range(1004, 1008):
        push(jb, seq)
    assert drain(jb, 6) == [1002, 1003, 1004, 1005, 1006, 1007]
    assert jb.stats.resets == 0
    assert jb.stats.probation == 1
    assert jb.stats.lost == 0


def test_restart_confirmed_by_reordered_neighbour_keeps_both() -> None:
    jb = JitterBuffer(depth_frames=2)
    for seq in range(10, 14):
        push(jb, seq)
    drain(jb, 4)
    push(jb, 40001)  # the new series, its first two packets swapped in transit
    push(jb, 40000)
    push(jb, 40002)
    assert drain(jb, 3) == [40000, 40001, 40002]
    assert jb.stats.resets == 1


def test_stray_overtaken_by_the_series_is_never_confirmed() -> None:
    jb = JitterBuffer(depth_frames=1, max_frames=64)
    push(jb, 0)
    push(jb, 150)  # stray, far ahead: held
    for seq in range(1, 160):  # the real series walks up past it
        push(jb, seq)
        jb.pop_frame()
    assert jb.stats.resets == 0


# -- re-framing of other packet sizes ---------------------------------------------------------------


def ramp_packets(sizes: list[int]) -> tuple[list[tuple[int, int, bytes]], bytes]:
    """Packets carrying a byte ramp; returns (seq, timestamp, payload) and the whole signal."""
    packets = []
    ts = 5000
    signal = bytearray()
    for seq, size in enumerate(sizes, start=700):
        payload = bytes((ts + i) % 251 for i in range(size))
        packets.append((seq, ts, payload))
        signal += payload
        ts += size
    return packets, bytes(signal)


@pytest.mark.parametrize("ms", [10, 30, 40, 60])
def test_reframes_other_packet_sizes_into_20ms(ms: int) -> None:
    size = 8 * ms
    packets, signal = ramp_packets([size] * (6000 // ms))  # 6 s
    jb = JitterBuffer(depth_frames=3)
    out: list[bytes | None] = []
    # Real timing: a packet every `ms`, a pop every 20 ms.
    events = sorted([(i * ms, 0, i) for i in range(len(packets))] + [(k * 20 + 1, 1, k) for k in range(330)])
    for t, kind, i in events:
        if kind == 0:
            seq, ts, payload = packets[i]
            jb.push(seq, ts, payload, t / 1000)
        else:
            out.append(jb.pop_frame())
    played = [f for f in out if f is not None]
    assert all(len(f) == 160 for f in played)
    assert b"".join(played) == signal
    first = next(i for i, f in enumerate(out) if f is not None)
    last = max(i for i, f in enumerate(out) if f is not None)
    assert all(f is not None for f in out[first : last + 1])  # continuous: no gap in the middle
    assert jb.stats.underruns <= 1 and jb.stats.lost == 0
    assert jb.packet_samples == size


def test_reframing_fills_a_lost_packet_with_silence_of_its_length() -> None:
    packets, _ = ramp_packets([240] * 8)
    jb = JitterBuffer(depth_frames=1, silence_byte=0xD5)
    for i, (seq, ts, payload) in enumerate(packets):
        if i != 3:
            jb.push(seq, ts, payload, 0.0)
    out = [jb.pop_frame() for _ in range(12)]
    joined = b"".join(f if f is not None else b"\xd5" * 160 for f in out)  # None: all fill
    expected = b"".join(p if i != 3 else b"\xd5" * 240 for i, (_, _, p) in enumerate(packets))
    assert joined[: len(expected)] == expected
    assert jb.stats.lost == 1 and jb.stats.concealed == 240


def test_reframing_frame_made_only_of_fill_is_none() -> None:
    packets, _ = ramp_packets([400] * 4)  # 50 ms packets
    jb = JitterBuffer(depth_frames=1)
    for i, (seq, ts, payload) in enumerate(packets):
        if i != 1:
            jb.push(seq, ts, payload, 0.0)
    out = [jb.pop_frame() for _ in range(10)]
    # 400 audio | 400 fill | 800 audio: frames 3 and 4 (samples 480-800) are all fill.
    assert [f is None for f in out] == [False] * 3 + [True] * 2 + [False] * 5


def test_ptime_change_mid_stream_keeps_the_signal() -> None:
    packets, signal = ramp_packets([160] * 5 + [240] * 4 + [80] * 6 + [160] * 5)
    jb = JitterBuffer(depth_frames=2)
    for seq, ts, payload in packets:
        jb.push(seq, ts, payload, 0.0)
    out = [jb.pop_frame() for _ in range(len(signal) // 160 + 2)]
    assert b"".join(f for f in out if f is not None) == signal


def test_reframing_event_slots_take_no_time_and_tail_is_padded() -> None:
    packets, signal = ramp_packets([240] * 3)
    jb = JitterBuffer(depth_frames=1)
    jb.push(packets[0][0], packets[0][1], packets[0][2], 0.0)
    jb.push(packets[0][0] + 1, 9999, None, 0.0)  # an RFC 4733 packet in the audio sequence space
    for seq, ts, payload in packets[1:]:
        jb.push(seq + 1, ts, payload, 0.0)
    out = [jb.pop_frame() for _ in range(6)]
    played = [f for f in out if f is not None]
    assert b"".join(played) == signal + b"\xff" * 80  # 720 samples: the last frame padded
    assert jb.stats.lost == 0


@given(st.lists(st.sampled_from([80, 160, 240, 320, 480]), min_size=1, max_size=40), st.integers(1, 5))
def test_any_packet_sizes_in_order_play_back_exactly(sizes: list[int], depth: int) -> None:
    assume(len(sizes) * sizes[-1] >= depth * 160)  # enough to end the prefill
    packets, signal = ramp_packets(sizes)
    jb = JitterBuffer(depth_frames=depth, max_frames=60)
    for seq, ts, payload in packets:
        jb.push(seq, ts, payload, 0.0)
    out = [jb.pop_frame() for _ in range(len(signal) // 160 + 3)]
    played = b"".join(f for f in out if f is not None)
    assert played[: len(signal)] == signal
    assert set(played[len(signal) :]) <= {0xFF}
