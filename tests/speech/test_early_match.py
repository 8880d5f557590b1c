"""Early match: the rule on plain numbers, then the listener ending real menu turns with it."""

from __future__ import annotations

import asyncio

import numpy as np

from ivr.speech.early import EarlyMatch
from ivr.speech.listener import RecognitionSpec, SpeechListener, SpeechResult
from tests.speech import KOREAN_MENU, Int16Array, frames, korean_model, spoken
from tests.speech.test_listener import run

STABLE = 10  # frames (200 ms)


def rule() -> EarlyMatch:
    return EarlyMatch.for_phrases(["Yes", "no  thanks"], stable_ms=200)


def test_a_phrase_formed_in_the_quiet_and_kept_for_200ms_is_ready() -> None:
    early = rule()
    early.update("", decoded=40)  # the caller stopped at frame 40
    early.update("yes", decoded=44)
    assert not early.ready(decoded=44, received=44, quiet=4)
    early.update("yes", decoded=53)
    assert not early.ready(decoded=53, received=53, quiet=13)  # stable for 9 frames
    early.update("yes", decoded=54)
    assert early.ready(decoded=54, received=54, quiet=14)


def test_a_guess_formed_while_the_caller_spoke_is_not_trusted() -> None:
    early = rule()
    early.update("yes", decoded=30)  # mid-word: the start of a longer word can look like "yes"
    early.update("yes", decoded=50)  # ... and linger into the silence that began at frame 35
    assert not early.ready(decoded=50, received=50, quiet=15)
    early.update("no thanks", decoded=52)  # the decoder has heard the silence: its real answer
    early.update("no thanks", decoded=62)
    assert early.ready(decoded=62, received=62, quiet=27)


def test_the_quiet_must_be_in_the_audio_the_partial_heard() -> None:
    early = rule()
    early.update("yes", decoded=38)  # the silence began at frame 36
    early.update("yes", decoded=40)
    # 12 quiet frames so far, but the partial only covers the first 4 of them.
    assert not early.ready(decoded=40, received=48, quiet=12)
    early.update("yes", decoded=48)
    assert early.ready(decoded=48, received=48, quiet=12)


def test_speech_after_the_decoded_audio_means_not_ready() -> None:
    early = rule()
    early.update("yes", decoded=30)
    early.update("yes", decoded=45)
    # Quiet ran out before the latest frames: the caller is talking again.
    assert not early.ready(decoded=45, received=50, quiet=3)


def test_a_changing_partial_restarts_the_wait() -> None:
    early = rule()
    early.update("no", decoded=32)  # the silence began at frame 30
    early.update("no thanks", decoded=38)
    assert not early.ready(decoded=45, received=45, quiet=15)  # stable for 7 frames
    early.update("No Thanks", decoded=48)  # the same phrase, normalised
    assert early.ready(decoded=48, received=48, quiet=18)


def test_only_exactly_one_allowed_phrase_counts() -> None:
    early = rule()
    for text in ("", "yes yes", "yes no", "maybe", "no"):
        early.update(text, decoded=10)
        early.update(text, decoded=60)
        assert not early.ready(decoded=60, received=60, quiet=50), text


# -- the listener, with real decoding ----------------------------------------------------------


async def turn(listener: SpeechListener, audio: Int16Array, spec: RecognitionSpec) -> tuple[SpeechResult, int]:
    """Feed ``audio`` at 4x real time; the result and how many 20 ms frames it took."""
    future = listener.start(spec)
    fed = 0
    for frame in frames(audio):
        listener.on_audio(frame)
        fed += 1
        if future.done():
            break
        await asyncio.sleep(0.005)
    return await asyncio.wait_for(future, 30), fed


def last_voiced_frame(audio: Int16Array) -> int:
    blocks = frames(audio)
    loud = [i for i, f in enumerate(blocks) if np.sqrt(np.mean(f.astype(np.float64) ** 2)) > 300]
    return loud[-1]


@run
async def test_early_match_answers_before_the_closing_silence() -> None:
    listener = SpeechListener(korean_model())
    for phrase, label in KOREAN_MENU.items():
        audio = spoken(phrase, lead=1.0, tail=1.5)
        spec = RecognitionSpec(grammar=KOREAN_MENU, early_match_ms=200)
        result, fed = await turn(listener, audio, spec)
        after_speech = (fed - 1 - last_voiced_frame(audio)) * 20
        assert (result.kind, result.intent, result.early) == ("speech", label, True), result
        assert after_speech < 600, after_speech  # the VAD alone would wait 600 ms of quiet
        assert 250 < result.speech_ms < 1500

        full, fed = await turn(listener, audio, RecognitionSpec(grammar=KOREAN_MENU))
        assert (full.intent, full.early) == (label, False)
        assert (fed - 1 - last_voiced_frame(audio)) * 20 >= 600


@run
async def test_a_caller_who_goes_on_talking_is_heard_to_the_end() -> None:
    listener = SpeechListener(korean_model())
    first = spoken("상담원", lead=1.0, tail=0.0)
    first = first[: (last_voiced_frame(first) + 4) * 160]  # espeak-ng's own 360 ms tail cut to 60 ms
    audio = np.concatenate([first, spoken("예약", lead=0.0)])
    result, _ = await turn(listener, audio, RecognitionSpec(grammar=KOREAN_MENU, early_match_ms=200))
    assert result.kind == "nomatch" and result.text.split() == ["상담원", "예약"]
    assert not result.early


@run
async def test_the_next_turn_after_an_early_match_starts_afresh() -> None:
    listener = SpeechListener(korean_model())
    spec = RecognitionSpec(grammar=KOREAN_MENU, early_match_ms=200)
    first, _ = await turn(listener, spoken("예약", lead=1.0, tail=1.5), spec)
    assert first.early and not listener.vad.speaking
    second, _ = await turn(listener, spoken("아니요", lead=1.0, tail=1.0), RecognitionSpec(grammar=KOREAN_MENU))
    assert (second.intent, second.early) == ("no", False)
    assert listener.vad.config.end_silence_ms == 600


@run
async def test_a_turn_without_its_own_end_silence_gets_the_default_back() -> None:
    listener = SpeechListener(korean_model())
    short = RecognitionSpec(grammar=KOREAN_MENU, end_silence_ms=300)
    result, _ = await turn(listener, spoken("예약", lead=1.0, tail=1.0), short)
    assert result.intent == "booking" and listener.vad.config.end_silence_ms == 300
    await turn(listener, spoken("아니요", lead=1.0, tail=1.0), RecognitionSpec(grammar=KOREAN_MENU))
    assert listener.vad.config.end_silence_ms == 600


@run
async def test_partials_come_while_the_caller_speaks() -> None:
    seen: list[str] = []
    listener = SpeechListener(korean_model(), on_partial=seen.append)
    result, _ = await turn(listener, spoken("상담원", lead=1.0, tail=1.0), RecognitionSpec(grammar=KOREAN_MENU))
    assert result.intent == "agent"
    assert seen and seen[-1] == "상담원" and listener.partial == "상담원"
