"""Prompts from text: rendered once, shared, and bounded in memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ivr.speech.prompt_library import PromptLibrary


def test_texts_are_rendered_once_and_memory_stays_bounded(tmp_path: Path) -> None:
    library = PromptLibrary(tmp_path, max_texts=2)

    async def scenario() -> None:
        first = await library.text("one")
        assert await library.text("one") is first  # from memory: the very same array
        await library.text("two")
        await library.text("three")
        assert len(library._texts) == 2 and ("en", "one") not in library._texts
        again = await library.text("one")  # from the disk cache, not rendered again
        assert (again == first).all()

    asyncio.run(scenario())
    assert len(list((tmp_path / "tts").glob("*.wav"))) == 3
    assert library.cache.conversions == 3
