from __future__ import annotations

import gc

import numpy as np
import pytest

from ivr.media import player as player_module
from ivr.media.g711 import codec_by_name
from ivr.media.player import Player, PlayResult

PCMU = codec_by_name("PCMU")
PCMA = codec_by_name("PCMA")


def ramp(frames: int, start: int = 0) -> np.ndarray:
    return (np.arange(frames * 160) + start).astype(np.int16)


def test_idle_player() -> None:
    p = Player()
    assert not p.playing
    assert p.next_frame() is None
    assert p.next_payload(PCMU) is None
    assert p.position == 0


def test_comfort_silence_flag() -> None:
    p = Player(comfort_silence=True)
    frame = p.next_frame()
    assert frame is not None and frame.shape == (160,) and not frame.any()
    assert p.next_payload(PCMU) == b"\xff" * 160
    assert p.next_payload(PCMA) == b"\xd5" * 160
    assert not p.playing


def test_plays_frames_in_order_and_reports_completion() -> None:
    p = Player()
    a = p.play(ramp(2))
    b = p.play(ramp(1, 1000))
    assert p.playing and p.current_id == a and p.queued == 2
    f1 = p.next_frame()
    assert f1 is not None and f1[0] == 0
    assert p.position == 160
    f2 = p.next_frame()
    assert f2 is not None and f2[0] == 160
    assert p.pop_finished() == [PlayResult(a, True, 320)]
    f3 = p.next_frame()
    assert f3 is not None and f3[0] == 1000
    assert not p.playing
    assert p.next_frame() is None
    assert p.pop_finished() == [PlayResult(b, True, 160)]
    assert p.pop_finished() == []


def test_partial_frame_is_padded() -> None:
    p = Player()
    p.play(np.full(200, 7, np.int16))
    p.next_frame()
    last = p.next_frame()
    assert last is not None and len(last) == 160
    assert last[:40].tolist() == [7] * 40 and not last[40:].any()


def test_on_done_callback() -> None:
    seen: list[PlayResult] = []
    p = Player()
    item = p.play(ramp(1), on_done=seen.append)
    p.next_frame()
    assert seen == [PlayResult(item, True, 160)]
    assert p.finished == []


def test_empty_item_completes_at_once() -> None:
    p = Player()
    item = p.play(np.zeros(0, np.int16))
    assert p.pop_finished() == [PlayResult(item, True, 0)]
    assert not p.playing


def test_barge_in_takes_effect_on_the_next_frame() -> None:
    p = Player()
    prompt = p.play(ramp(50))
    p.play(ramp(2, 5000), interruptible=False)
    queued = p.play(ramp(3))
    p.next_frame()
    p.next_frame()
    assert p.stop_interruptible() == [prompt, queued]
    frame = p.next_frame()
    assert frame is not None and frame[0] == 5000
    assert p.pop_finished() == [PlayResult(prompt, False, 320), PlayResult(queued, False, 0)]


def test_barge_in_on_protected_item_keeps_playing_it() -> None:
    p = Player()
    protected = p.play(ramp(2), interruptible=False)
    p.next_frame()
    assert p.stop_interruptible() == []
    frame = p.next_frame()
    assert frame is not None and frame[0] == 160
    assert p.pop_finished() == [PlayResult(protected, True, 320)]


def test_barge_in_with_only_interruptible_items_goes_idle() -> None:
    p = Player()
    p.play(ramp(5))
    p.next_payload(PCMU)
    p.stop_interruptible()
    assert not p.playing
    assert p.next_payload(PCMU) is None


def test_stop_everything() -> None:
    p = Player()
    p.play(ramp(2), interruptible=False)
    p.play(ramp(2))
    assert len(p.stop()) == 2
    assert p.next_frame() is None


def test_payloads_match_frame_encoding() -> None:
    samples = (np.sin(np.arange(800) / 5) * 10000).astype(np.int16)
    p = Player()
    p.play(samples)
    for i in range(5):
        payload = p.next_payload(PCMA if i % 2 else PCMU)
        codec = PCMA if i % 2 else PCMU
        assert payload == codec.encode(samples[i * 160 : (i + 1) * 160])


def test_read_only_prompts_are_encoded_once_per_process() -> None:
    prompt = ramp(3)
    prompt.setflags(write=False)
    entries = player_module._ENCODED._entries
    before = len(entries)
    players = [Player() for _ in range(5)]
    for player in players:
        player.play(prompt)
        assert player.next_payload(PCMU) == PCMU.encode(prompt[:160])
    assert len(entries) == before + 1
    assert entries[id(prompt)].keys() == {"PCMU"}
    del players, player, prompt
    gc.collect()
    assert len(entries) == before  # dropped with the array


def test_writable_arrays_not_shared() -> None:
    samples = ramp(2)
    p = Player()
    p.play(samples)
    assert p.next_payload(PCMU) == PCMU.encode(samples[:160])
    assert id(samples) not in player_module._ENCODED._entries


def test_rejects_non_int16() -> None:
    with pytest.raises(TypeError):
        Player().play(np.zeros(160, np.float32))


def test_live_frame_plays_once_and_is_never_queued() -> None:
    player = Player()
    player.feed(np.full(160, 1234, np.int16))
    player.feed(np.full(160, 99, np.int16))  # replaces the unplayed one
    assert player.live_replaced == 1
    frame = player.next_frame()
    assert frame is not None and set(frame.tolist()) == {99}
    assert player.next_frame() is None
    assert not player.has_live


def test_live_payload_passes_through_or_is_translated() -> None:
    pcmu, pcma = codec_by_name("PCMU"), codec_by_name("PCMA")
    signal = (np.sin(np.arange(160) / 5) * 12000).astype(np.int16)
    payload = pcmu.encode(signal)
    player = Player()
    player.feed_encoded(payload, pcmu)
    assert player.next_payload(pcmu) is payload  # same codec: not even copied
    player.feed_encoded(payload, pcmu)
    assert player.next_payload(pcma) == pcma.encode(pcmu.decode(payload))
    player.feed_encoded(payload, pcmu)
    frame = player.next_frame()
    assert frame is not None and np.array_equal(frame, pcmu.decode(payload))
    with pytest.raises(ValueError):
        player.feed_encoded(payload[:80], pcmu)
    with pytest.raises(TypeError):
        player.feed(np.zeros(80, np.int16))


def test_live_frame_mixes_with_a_playing_item_and_clips() -> None:
    player = Player()
    player.play(np.full(320, 30000, np.int16))
    player.feed(np.full(160, 10000, np.int16))
    mixed = player.next_frame()
    assert mixed is not None and set(mixed.tolist()) == {32767}
    assert player.position == 160  # the item advanced with the mix
    frame = player.next_frame()
    assert frame is not None and set(frame.tolist()) == {30000}


def test_cancel_one_item_and_stop_drops_live() -> None:
    player = Player()
    first = player.play(np.zeros(320, np.int16), interruptible=False)
    second = player.play(np.zeros(320, np.int16), interruptible=False)
    assert player.cancel(first)
    assert not player.cancel(first)
    assert player.current_id == second
    assert player.pop_finished() == [PlayResult(first, False, 0)]
    player.feed(np.zeros(160, np.int16))
    player.stop()
    assert not player.has_live
