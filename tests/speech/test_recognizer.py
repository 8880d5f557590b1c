"""Real Vosk (the Korean model) on espeak-ng speech sent through G.711, as a caller would."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.speech.recognizer import StreamingRecognizer
from tests.speech import KOREAN_MENU, KOREAN_MENU_2, korean_model, spoken, white_noise


@pytest.mark.parametrize("menu", [KOREAN_MENU, KOREAN_MENU_2], ids=["menu1", "menu2"])
def test_grammar_routes_each_phrase_to_itself(menu: dict[str, str]) -> None:
    recognizer = StreamingRecognizer(korean_model(), list(menu))
    for phrase in menu:
        recognizer.accept(spoken(phrase))
        result = recognizer.finish()
        assert result.matched and result.phrase == phrase, (phrase, result)
        assert result.confidence >= 0.6 and result.words[0].word == phrase


def test_feeding_20ms_frames_gives_the_same_result_as_one_block() -> None:
    audio = spoken("예약")
    whole = StreamingRecognizer(korean_model(), list(KOREAN_MENU))
    whole.accept(audio)
    framed = StreamingRecognizer(korean_model(), list(KOREAN_MENU))
    for start in range(0, len(audio), 160):
        framed.accept(audio[start : start + 160])
    assert framed.samples_fed == whole.samples_fed
    assert framed.finish() == whole.finish()


def test_resampling_8k_to_the_models_16k() -> None:
    recognizer = StreamingRecognizer(korean_model(), list(KOREAN_MENU))
    assert recognizer.rate == 16000
    tone = (np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000) * 8000).astype(np.int16)
    chunks = [recognizer._resample(tone[i : i + 160], last=False) for i in range(0, 8000, 160)]
    chunks.append(recognizer._resample(np.zeros(0, np.int16), last=True))
    out = np.concatenate(chunks)
    assert len(out) == 16000  # twice the samples, none lost at chunk edges
    spectrum = np.abs(np.fft.rfft(out[2000:14000].astype(np.float64)))
    peak_hz = np.argmax(spectrum) * 16000 / 12000
    assert abs(peak_hz - 1000) < 3  # the same tone, at the new rate


def test_silence_is_no_match_with_no_text() -> None:
    recognizer = StreamingRecognizer(korean_model(), list(KOREAN_MENU))
    recognizer.accept(np.zeros(16000, np.int16))
    result = recognizer.finish()
    assert not result.matched and result.text == ""


@pytest.mark.parametrize("rms", [1000, 3000, 8000])
def test_white_noise_is_no_match(rms: float) -> None:
    # Without [unk] a grammar forces noise onto its phrases; the loop rule (strong noise comes out
    # as two phrases) and the confidence threshold (weak noise scores low) reject it.
    recognizer = StreamingRecognizer(korean_model(), list(KOREAN_MENU))
    recognizer.accept(white_noise(2.0, rms))
    assert not recognizer.finish().matched


def test_loops_of_allowed_phrases_are_no_match() -> None:
    recognizer = StreamingRecognizer(korean_model(), list(KOREAN_MENU))
    recognizer.accept(np.concatenate([spoken("상담원", tail=0.3), spoken("예약", lead=0.3)]))
    result = recognizer.finish()
    assert result.text.split() == ["상담원", "예약"] and not result.matched


def test_no_dither_gives_identical_results_every_time() -> None:
    audio = np.concatenate([spoken("상담원"), white_noise(0.5, 800)])
    runs = set()
    for _ in range(4):
        recognizer = StreamingRecognizer(korean_model(), None)
        recognizer.accept(audio)
        runs.add(recognizer.finish())
    assert len(runs) == 1


def test_phrases_outside_the_vocabulary_are_dropped_not_sent() -> None:
    recognizer = StreamingRecognizer(korean_model(), ["상담원", "qwxz"])
    assert recognizer.phrases == ("상담원",) and recognizer.dropped == ("qwxz",)


def test_free_form_keeps_words_with_confidences() -> None:
    recognizer = StreamingRecognizer(korean_model(), None, threshold=0.0)
    recognizer.accept(spoken("안녕하세요 상담원 연결해 주세요"))
    result = recognizer.finish()
    assert result.matched and result.phrase is None and len(result.words) >= 2
    assert all(0.0 <= w.conf <= 1.0 and w.start < w.end for w in result.words)
    assert result.confidence == pytest.approx(sum(w.conf for w in result.words) / len(result.words))


def test_threshold_turns_a_match_into_no_match() -> None:
    strict = StreamingRecognizer(korean_model(), None, threshold=1.01)
    strict.accept(spoken("안녕하세요 상담원 연결해 주세요"))
    result = strict.finish()
    assert result.text and not result.matched
