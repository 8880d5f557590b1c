"""Prompts as ready-to-play 8 kHz audio: recorded files, or text rendered by TTS, cached twice.

On disk, each rendering and each conversion is kept (``audio/cache``, within a size budget when one
is given: the least recently written go first), so a restart plays at once;
in memory, each distinct (text, language) maps straight to its samples, so a busy server does no
file work per call for its static prompts.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ivr.media.disk_budget import prune
from ivr.media.prompts import PromptCache
from ivr.speech.tts import TextToSpeech, voice_for

Int16Array = npt.NDArray[np.int16]


class PromptLibrary:
    PRUNE_EVERY = 64  # new texts between two checks of the disk budget (each lists the directories)

    def __init__(
        self,
        cache_dir: Path,
        tts: TextToSpeech | None = None,
        max_texts: int = 2048,
        max_disk_bytes: int | None = None,
        in_process_tts: bool = False,
    ) -> None:
        self.cache = PromptCache(cache_dir / "pcm")
        self.tts = tts if tts is not None else TextToSpeech(cache_dir / "tts", in_process=in_process_tts)
        self.max_disk_bytes = max_disk_bytes  # None: the disk cache is not pruned
        self._new_texts = 0
        self.pruned = 0  # files removed to keep the budget
        # Bounded: prompts with variables ("You entered 4 7 1 1") are new text on almost every call.
        self._texts: OrderedDict[tuple[str, str], Int16Array] = OrderedDict()
        self.max_texts = max_texts

    async def text(self, text: str, language: str = "en") -> Int16Array:
        """The samples of ``text`` spoken in ``language`` (rendered once, then from memory)."""
        key = (language, text)
        samples = self._texts.get(key)
        if samples is not None:
            self._texts.move_to_end(key)
            return samples
        wav = await self.tts.render(text, voice_for(language))
        samples = await asyncio.get_running_loop().run_in_executor(None, self.cache.load, wav)
        self._texts[key] = samples
        while len(self._texts) > self.max_texts:
            self._texts.popitem(last=False)
        self._new_texts += 1
        if self.max_disk_bytes is not None and self._new_texts % self.PRUNE_EVERY == 0:
            await asyncio.get_running_loop().run_in_executor(None, self.prune_disk)
        return samples

    def prune_disk(self) -> int:
        """Keep renderings and conversions within ``max_disk_bytes`` (half the budget each)."""
        if self.max_disk_bytes is None:
            return 0
        half = self.max_disk_bytes // 2
        removed = prune(self.tts.cache_dir, half, ("*.wav",)) + prune(self.cache.cache_dir, half, ("*.npy",))
        self.pruned += removed
        return removed

    async def file(self, path: Path) -> Int16Array:
        return await asyncio.get_running_loop().run_in_executor(None, self.cache.load, path)
