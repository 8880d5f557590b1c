"""SpeechListener end to end: caller frames in, endpointing, barge-in, real decoding in the pool."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import pytest

from ivr.speech.listener import RecognitionSpec, SpeechListener, SpeechResult
from tests.speech import KOREAN_MENU, Int16Array, frames, korean_model, spoken, white_noise


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def wrapper() -> None:
        asyncio.run(test())

    return wrapper


class Caller:
    """A listener with its barge-in and partial-result callbacks recorded."""

    def __init__(self) -> None:
        self.barge_ins = 0
        self.partials: list[str] = []
        self.listener = SpeechListener(
            korean_model(), on_speech_start=self._barge_in, on_partial=self.partials.append
        )

    def _barge_in(self) -> None:
        self.barge_ins += 1

    async def say(self, audio: Int16Array, spec: RecognitionSpec, pace: float = 0.0) -> SpeechResult:
        """Feed ``audio`` frame by frame, ``pace`` seconds apart (0: as fast as the loop turns)."""
        future = self.listener.start(spec)
        for frame in frames(audio):
            self.listener.on_audio(frame)
            if future.done():
                break
            await asyncio.sleep(pace)  # let finished decoding jobs report, as the media clock would
        return await asyncio.wait_for(future, 30)


MENU = RecognitionSpec(grammar=KOREAN_MENU, no_input_timeout=3.0)


@run
async def test_each_menu_phrase_routes_to_its_choice() -> None:
    caller = Caller()
    for phrase, label in KOREAN_MENU.items():
        result = await caller.say(spoken(phrase, lead=1.0, tail=1.0), MENU)
        assert (result.kind, result.intent, result.text) == ("speech", label, phrase)
        assert result.latency_ms is not None and result.latency_ms >= 0.0
        assert 250 < result.speech_ms < 1500
    assert caller.barge_ins == len(KOREAN_MENU)  # one speech start per utterance
    assert not caller.listener.listening


@run
async def test_silence_is_noinput_exactly_at_the_timeout_and_never_barges_in() -> None:
    caller = Caller()
    future = caller.listener.start(RecognitionSpec(grammar=KOREAN_MENU, no_input_timeout=1.0))
    silence = np.zeros(160, np.int16)
    for _ in range(49):
        caller.listener.on_audio(silence)
    assert not future.done()
    caller.listener.on_audio(silence)  # the 50th frame: 1.0 s
    assert (await future).kind == "noinput"
    assert caller.barge_ins == 0


@run
async def test_line_noise_and_clicks_are_not_speech() -> None:
    caller = Caller()
    audio = white_noise(3.0, 1000)
    audio[12000:12004] = (20000, -20000, 20000, -20000)  # a click on a noisy line
    result = await caller.say(audio, RecognitionSpec(grammar=KOREAN_MENU, no_input_timeout=3.5))
    assert result.kind == "noinput" and caller.barge_ins == 0


@run
async def test_two_choices_in_one_breath_are_nomatch() -> None:
    caller = Caller()
    audio = np.concatenate([spoken("상담원", lead=1.0, tail=0.2), spoken("예약", lead=0.0)])
    result = await caller.say(audio, MENU)
    assert result.kind == "nomatch" and result.text.split() == ["상담원", "예약"]
    assert result.intent is None and caller.barge_ins == 1


@run
async def test_max_utterance_ends_a_long_turn() -> None:
    caller = Caller()
    long_turn = spoken("안녕하세요 상담원 연결해 주세요 감사합니다", lead=0.5, tail=2.0)
    result = await caller.say(long_turn, RecognitionSpec(grammar=None, max_utterance=1.0, threshold=0.0))
    assert result.speech_ms == 1000.0 and result.text


@run
async def test_free_form_gives_the_transcript_with_partials_while_speaking() -> None:
    caller = Caller()
    spec = RecognitionSpec(grammar=None, threshold=0.0)
    # Paced in real time, as a caller speaks: each 200 ms batch decodes in a fraction of that, so
    # partial results come while the caller is still speaking even on a busy machine.
    result = await caller.say(spoken("안녕하세요 상담원 연결해 주세요", lead=1.0), spec, pace=0.02)
    assert result.kind == "speech" and result.text and result.words
    assert caller.partials and all(p for p in caller.partials)  # partial results came while speaking


@run
async def test_no_frames_at_all_still_gives_noinput() -> None:
    caller = Caller()
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await caller.listener.listen(RecognitionSpec(grammar=KOREAN_MENU, no_input_timeout=0.2))
    assert result.kind == "noinput"
    assert 0.2 <= loop.time() - started < 2.0


@run
async def test_cancel_stops_listening_and_allows_the_next_listen() -> None:
    caller = Caller()
    future = caller.listener.start(MENU)
    with pytest.raises(RuntimeError, match="already listening"):
        caller.listener.start(MENU)
    caller.listener.cancel()
    with pytest.raises(asyncio.CancelledError):
        await future
    assert not caller.listener.listening
    result = await caller.say(spoken("아니요", lead=1.0), MENU)
    assert result.intent == "no"
