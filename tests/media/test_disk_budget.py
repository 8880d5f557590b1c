"""The prompt cache on disk stays within its budget; the oldest files go first."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ivr.media.disk_budget import prune
from ivr.speech.prompt_library import PromptLibrary


def files(directory: Path, count: int, size: int, suffix: str = ".wav") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    made = []
    for index in range(count):
        path = directory / f"{index:03d}{suffix}"
        path.write_bytes(b"x" * size)
        os.utime(path, (1000 + index, 1000 + index))  # written one second apart, oldest first
        made.append(path)
    return made


def test_the_oldest_go_until_under_ninety_percent(tmp_path: Path) -> None:
    made = files(tmp_path, 10, 1000)
    (tmp_path / "x.wav.part").write_bytes(b"y" * 5000)  # a rendering in progress is never touched
    assert prune(tmp_path, 10_000) == 0  # exactly at the budget: nothing to do
    assert prune(tmp_path, 8000) == 3  # 10 000 -> 7000 (90 % of 8000 is 7200)
    assert [p.exists() for p in made] == [False] * 3 + [True] * 7
    assert (tmp_path / "x.wav.part").exists()


def test_the_library_keeps_its_disk_cache_within_the_budget(tmp_path: Path) -> None:
    library = PromptLibrary(tmp_path, max_disk_bytes=120_000)
    library.PRUNE_EVERY = 4

    async def scenario() -> None:
        for number in range(12):
            await library.text(f"Your number is {number}.")

    asyncio.run(scenario())
    on_disk = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert library.pruned > 0
    assert on_disk <= 120_000 + 4 * 40_000, "at most the texts since the last check above the budget"
    assert len(list((tmp_path / "tts").glob("*.wav"))) < 12
