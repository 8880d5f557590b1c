"""Prompts as ready-to-play 8 kHz audio: recorded files, or text rendered by TTS, cached twice.

On disk, each rendering and each conversion is kept (``audio/cache``), so a restart plays at once;
in memory, each distinct (text, language) maps straight to its samples, so a busy server does no
file work per call for its static prompts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ivr.media.prompts import PromptCache
from ivr.speech.tts import TextToSpeech, voice_for

Int16Array = npt.NDArray[np.int16]


class PromptLibrary:
    def __init__(self, cache_dir: Path, tts: TextToSpeech | None = None) -> None:
        self.cache = PromptCache(cache_dir / "pcm")
        self.tts = tts if tts is not None else TextToSpeech(cache_dir / "tts")
        self._texts: dict[tuple[str, str], Int16Array] = {}

    async def text(self, text: str, language: str = "en") -> Int16Array:
        """The samples of ``text`` spoken in ``language`` (rendered once, then from memory)."""
        key = (language, text)
        samples = self._texts.get(key)
        if samples is None:
            wav = await self.tts.render(text, voice_for(language))
            samples = await asyncio.get_running_loop().run_in_executor(None, self.cache.load, wav)
            self._texts[key] = samples
        return samples

    async def file(self, path: Path) -> Int16Array:
        return await asyncio.get_running_loop().run_in_executor(None, self.cache.load, path)
