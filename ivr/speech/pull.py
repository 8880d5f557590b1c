"""``ivr models pull LANG``: fetch an official Vosk model into the model cache.

- Download into ``<cache>/<lang>.zip.part``; an interrupted transfer resumes with an HTTP Range
  request from the bytes already there (a server that ignores Range answers 200 and we start over).
- Verified before use: the byte count must equal the server's Content-Length, the archive must pass
  ``ZipFile.testzip`` (every member's CRC-32), and it must hold a model (am/final.mdl, conf/ and a
  graph).  The Vosk project publishes no checksums beside its download links, so there is no
  digest to compare against; ``MODELS`` has a ``sha256`` slot for when one is pinned.
- Unpacked atomically: extracted into a temporary directory beside the target, then renamed over
  it, so a crash never leaves a half model where the resolver would find it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ivr.speech.models import cache_root, is_model_dir

__all__ = ["MODELS", "ModelSource", "PullError", "download", "pull", "unpack"]

CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class ModelSource:
    name: str
    url: str
    sha256: str | None = None


_BASE = "https://alphacephei.com/vosk/models/"
MODELS: dict[str, ModelSource] = {
    "en": ModelSource("vosk-model-small-en-us-0.15", _BASE + "vosk-model-small-en-us-0.15.zip"),
    "de": ModelSource("vosk-model-small-de-0.15", _BASE + "vosk-model-small-de-0.15.zip"),
}


class PullError(RuntimeError):
    pass


Progress = Callable[[int, int | None], None]


def bar(stream: IO[str] | None = None) -> Progress:
    """A one-line progress bar (bytes done / total) on stderr, redrawn at most 10 times a second."""
    out = stream if stream is not None else sys.stderr
    last = [0.0]

    def show(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and (total is None or done < total):
            return
        last[0] = now
        if total:
            filled = int(30 * done / total)
            out.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done / 2**20:6.1f}/{total / 2**20:.1f} MiB")
        else:
            out.write(f"\r{done / 2**20:6.1f} MiB")
        if total is not None and done >= total:
            out.write("\n")
        out.flush()

    return show


def download(url: str, part: Path, progress: Progress | None = None, timeout: float = 30.0) -> Path:
    """Fetch ``url`` into ``part``, resuming from its current size; returns ``part`` when complete."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left past what we have: it was complete
            return part
        raise PullError(f"{url}: HTTP {exc.code}") from exc
    except OSError as exc:
        raise PullError(f"{url}: {exc}") from exc
    with response:
        length = response.headers.get("Content-Length")
        remaining = int(length) if length is not None else None
        if response.status == 206:
            mode = "ab"
            total = have + remaining if remaining is not None else None
        else:  # 200: the whole file (the server ignored Range, or there was nothing to resume)
            mode, have = "wb", 0
            total = remaining
        done = have
        with open(part, mode) as out:
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
            except (OSError, http.client.HTTPException) as exc:
                # What arrived stays in the .part file; the next run asks for the rest.
                raise PullError(f"{url}: interrupted at {done} bytes ({exc!r}); run again to resume") from exc
    if total is not None and done != total:
        raise PullError(f"{url}: transfer ended at {done} of {total} bytes; run again to resume")
    return part


def _check_archive(archive: Path, sha256: str | None) -> None:
    if sha256 is not None:
        digest = hashlib.sha256()
        with open(archive, "rb") as data:
            while chunk := data.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            raise PullError(f"{archive.name}: sha256 mismatch")
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        raise PullError(f"{archive.name}: not a valid zip archive ({exc})") from exc
    if bad is not None:
        raise PullError(f"{archive.name}: corrupt member {bad}")


def unpack(archive: Path, target: Path) -> Path:
    """Extract a model archive into ``target`` atomically; the archive's top directory is dropped."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                # Refuse paths that would escape the staging directory.
                if member.startswith("/") or ".." in Path(member).parts:
                    raise PullError(f"{archive.name}: unsafe path {member}")
            zf.extractall(staging)
        entries = [p for p in staging.iterdir()]
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
        if not is_model_dir(root):
            raise PullError(f"{archive.name}: no Vosk model inside (am/final.mdl, conf/, graph/)")
        if root is not staging:
            inner = staging.with_name(staging.name + ".model")
            os.replace(root, inner)
            shutil.rmtree(staging)
            staging = inner
        if target.exists():
            old = target.with_name(f".{target.name}.old.{os.getpid()}")
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def pull(
    language: str,
    cache_dir: Path | None = None,
    *,
    source: ModelSource | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download, verify and unpack the model for ``language``; returns the model directory."""
    if source is None:
        source = MODELS.get(language)
        if source is None:
            known = ", ".join(sorted(MODELS))
            raise PullError(f"no known model for {language!r} (known: {known}); set VOSK_MODEL_PATH instead")
    root = cache_dir if cache_dir is not None else cache_root()
    root.mkdir(parents=True, exist_ok=True)
    part = root / f"{language}.zip.part"
    download(source.url, part, progress)
    try:
        _check_archive(part, source.sha256)
        target = unpack(part, root / language)
    except PullError:
        part.unlink(missing_ok=True)  # resuming a complete but bad file would only repeat the failure
        raise
    part.unlink()
    return target
