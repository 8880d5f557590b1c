"""Keep a cache directory under a size budget: the files written longest ago go first.

Prompts with variables ("You entered 4 7 1 1", "we will call you back within 25 minutes") are new
text on many calls, and each rendering and conversion is kept on disk so a restart plays at once.
Without a budget that directory grows for ever. Pruning goes down to 90 % of the budget, so it
does not run again on the very next write. A file another process is writing at the same moment is
a ``.part``/``.tmp`` name and is never matched; one deleted under a reader is rendered again.
"""

from __future__ import annotations

import os
from pathlib import Path


def prune(directory: Path, max_bytes: int, patterns: tuple[str, ...] = ("*.wav", "*.npy")) -> int:
    """Delete the oldest files (by modification time) until ``directory`` fits; returns how many."""
    entries: list[tuple[float, int, Path]] = []
    total = 0
    for pattern in patterns:
        for path in directory.glob(pattern):
            try:
                info = path.stat()
            except OSError:
                continue  # gone already: another process pruned it
            entries.append((info.st_mtime, info.st_size, path))
            total += info.st_size
    if total <= max_bytes:
        return 0
    removed = 0
    for _, size, path in sorted(entries):
        if total <= max_bytes * 0.9:
            break
        try:
            os.unlink(path)
        except OSError:
            continue
        total -= size
        removed += 1
    return removed
