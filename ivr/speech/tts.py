"""Text to telephone audio with espeak-ng, rendered once per (text, voice, rate) and cached.

Rendering runs as a separate espeak-ng process per prompt, so it never blocks the event loop
and concurrent renders cannot trample each other (the in-process engine is not thread-safe).
Files are written under a temporary name and renamed, so a crash never leaves half a prompt
in the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

# espeak-ng voice per flow language; an operator can name any espeak-ng voice instead.
VOICES = {"en": "en-us", "de": "de", "ko": "ko"}
DEFAULT_RATE = 160


class TtsError(RuntimeError):
    pass


def voice_for(language: str) -> str:
    return VOICES.get(language, language)


class TextToSpeech:
    def __init__(self, cache_dir: Path, executable: str = "espeak-ng") -> None:
        self.cache_dir = cache_dir
        self.executable = executable
        self._inflight: dict[Path, asyncio.Future[Path]] = {}

    def available(self) -> bool:
        return shutil.which(self.executable) is not None

    def path_for(self, text: str, voice: str, rate: int = DEFAULT_RATE) -> Path:
        key = hashlib.sha256(f"{voice}\0{rate}\0{text}".encode()).hexdigest()[:32]
        return self.cache_dir / f"{key}.wav"

    def render_sync(self, text: str, voice: str, rate: int = DEFAULT_RATE) -> Path:
        target = self.path_for(text, voice, rate)
        if target.exists():
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        try:
            subprocess.run(
                [self.executable, "-v", voice, "-s", str(rate), "-w", str(partial), "--", text],
                check=True,
                capture_output=True,
                timeout=60,
            )
        except FileNotFoundError as exc:
            raise TtsError(f"{self.executable} is not installed") from exc
        except subprocess.CalledProcessError as exc:
            raise TtsError(
                f"{self.executable} failed: {exc.stderr.decode(errors='replace').strip()}"
            ) from exc
        os.replace(partial, target)
        return target

    async def render(self, text: str, voice: str, rate: int = DEFAULT_RATE) -> Path:
        target = self.path_for(text, voice, rate)
        if target.exists():
            return target
        # Two calls asking for the same new prompt share one rendering.
        pending = self._inflight.get(target)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Path] = loop.run_in_executor(None, self.render_sync, text, voice, rate)
        self._inflight[target] = future
        try:
            return await future
        finally:
            self._inflight.pop(target, None)
