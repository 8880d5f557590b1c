"""pyttsx3 (over libespeak-ng) on one dedicated thread: in-process TTS without its pitfalls.

Rendering in process saves starting an espeak-ng process per prompt (about 10 ms against 50-100
ms here), which matters for prompts with variables, rendered while the caller waits. But one
pyttsx3 engine is not thread-safe: used from two threads it raises or silently writes nothing.
So every pyttsx3 call (the engine's creation included) runs on this one thread, one job at a time,
and a job that wrote no audio is reported as a failure, never as a prompt. One thread per process,
not per user of it: ``pyttsx3.init`` hands every caller the same engine, and libespeak-ng itself
is one synthesizer per process.
"""

from __future__ import annotations

import atexit
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ivr.logs import get_logger

log = get_logger()


def _quiet(*args: object, **kwargs: object) -> None:
    """pyttsx3 2.99's espeak driver prints "Audio saved to ..." for every file; stdout is our log."""


class Pyttsx3Renderer:
    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyttsx3")
        self._engine: Any = None
        self._voices: set[str] = set()  # espeak-ng voice names, lower case ("en-us", "de")
        self.broken: str | None = None  # why pyttsx3 cannot be used here (then the caller falls back)

    def render(self, text: str, voice: str, rate: int, path: Path, timeout: float = 60.0) -> bool:
        """Write ``text`` as a WAV file at ``path``; False when pyttsx3 could not."""
        if self.broken is not None:
            return False
        return self._thread.submit(self._render, text, voice, rate, path).result(timeout)

    def _start(self) -> Any:
        try:
            import pyttsx3
            import pyttsx3.drivers.espeak as driver

            driver.print = _quiet
            engine = pyttsx3.init("espeak")
            # Ids are "<family>/<name>" ("gmw/en-US"); operators name voices as espeak-ng does.
            self._voices = {str(v.id).rsplit("/", 1)[-1].lower() for v in engine.getProperty("voices")}
        except Exception as exc:  # no libespeak-ng, no pyttsx3...: the command still works
            self.broken = f"{type(exc).__name__}: {exc}"
            log.warning("pyttsx3 unusable; prompts are rendered by the espeak-ng command", error=self.broken)
            return None
        return engine

    def _render(self, text: str, voice: str, rate: int, path: Path) -> bool:
        if self._engine is None:
            self._engine = self._start()
            if self._engine is None:
                return False
        if voice.lower() not in self._voices:
            return False  # pyttsx3 would quietly keep the previous voice; the command says what is wrong
        engine = self._engine
        try:
            engine.setProperty("voice", voice)
            engine.setProperty("rate", rate)
            engine.save_to_file(text, str(path))
            engine.runAndWait()
        except Exception as exc:  # this prompt goes to the command instead
            log.warning("pyttsx3 failed on a prompt", error=f"{type(exc).__name__}: {exc}")
            return False
        return path.exists() and path.stat().st_size > 44  # more than a bare WAV header

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self._engine = None


_shared: Pyttsx3Renderer | None = None
_shared_lock = threading.Lock()


def shared_renderer() -> Pyttsx3Renderer:
    """The process's one renderer (created on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Pyttsx3Renderer()
            # The engine goes while Python is whole: dropped at interpreter teardown, pyttsx3's
            # __del__ finds its modules already gone and prints a traceback.
            atexit.register(_shared.close)
        return _shared
