"""Prompts: any common WAV file -> 8 kHz int16 frames, converted once and cached.

The standard library's `wave` module reads integer PCM only, so this module has its own small RIFF
reader for the formats prompt files actually come in: integer PCM (8/16/24/32-bit), IEEE float
(32/64-bit), G.711 A-law and mu-law, each also wrapped in WAVE_FORMAT_EXTENSIBLE; any channel count
(mixed down to mono) and any sample rate (resampled with soxr, high quality).

`PromptCache` keys converted audio by the SHA-256 of the file's bytes and the converter version, so
an edited prompt is reconverted, an unchanged one is read back as a ready `.npy` array, even by
another worker process; an in-memory LRU in front saves even that.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]

from .g711 import ALAW_DECODE_TABLE, ULAW_DECODE_TABLE

__all__ = [
    "CONVERTER_VERSION",
    "PromptCache",
    "PromptError",
    "WavInfo",
    "convert",
    "load_wav",
    "pad_to_frames",
    "read_wav",
    "silence",
    "tone",
]

CONVERTER_VERSION = "1"
RATE = 8000
FRAME = 160

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# The SubFormat GUID of WAVE_FORMAT_EXTENSIBLE is the format code followed by this fixed tail.
_KSDATAFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_FORMAT_NAMES = {
    WAVE_FORMAT_PCM: "PCM",
    WAVE_FORMAT_IEEE_FLOAT: "IEEE float",
    WAVE_FORMAT_ALAW: "A-law",
    WAVE_FORMAT_MULAW: "mu-law",
}

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]


class PromptError(Exception):
    """A prompt file cannot be used; says which file and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WavInfo:
    format: int  # resolved format code (the SubFormat for WAVE_FORMAT_EXTENSIBLE)
    channels: int
    sample_rate: int
    bits_per_sample: int  # container bits per sample
    frames: int


def _parse_fmt(path: str, chunk: bytes) -> tuple[int, int, int, int, int]:
    if len(chunk) < 16:
        raise PromptError(path, f"fmt chunk is {len(chunk)} bytes, needs at least 16")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", chunk)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(chunk) < 40:
            raise PromptError(path, "WAVE_FORMAT_EXTENSIBLE fmt chunk is shorter than 40 bytes")
        sub_format = chunk[24:40]
        if sub_format[2:] != _KSDATAFORMAT_TAIL:
            raise PromptError(path, f"unsupported extensible sub-format {sub_format.hex()}")
        tag = struct.unpack_from("<H", sub_format)[0]
    return tag, channels, rate, block_align, bits


def read_wav(data: bytes, path: str = "<bytes>") -> tuple[WavInfo, Float32Array]:
    """Parse a RIFF/WAVE file into (info, float32 samples of shape (frames, channels))."""
    if len(data) == 0:
        raise PromptError(path, "file is empty")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        kind = "RIFF but not WAVE" if data[:4] == b"RIFF" else "not a RIFF/WAVE file"
        raise PromptError(path, kind)
    fmt: tuple[int, int, int, int, int] | None = None
    samples: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        body_start = pos + 8
        available = len(data) - body_start
        if chunk_id == b"data":
            if fmt is None:
                raise PromptError(path, "data chunk comes before the fmt chunk")
            if size == 0xFFFFFFFF:
                size = available  # written while streaming: the length was never filled in
            elif size > available:
                raise PromptError(
                    path, f"truncated: data chunk declares {size} bytes, only {available} present"
                )
            samples = data[body_start : body_start + size]
            break
        if size > available:
            raise PromptError(path, f"truncated: {chunk_id!r} chunk declares {size} bytes")
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(path, data[body_start : body_start + size])
        pos = body_start + size + (size & 1)  # RIFF chunks are padded to even length
    if fmt is None:
        raise PromptError(path, "no fmt chunk")
    if samples is None:
        raise PromptError(path, "no data chunk")

    tag, channels, rate, block_align, bits = fmt
    if channels < 1:
        raise PromptError(path, "fmt chunk says 0 channels")
    if rate < 1:
        raise PromptError(path, "fmt chunk says sample rate 0")
    if block_align == 0 or block_align % channels:
        raise PromptError(path, f"block align {block_align} does not fit {channels} channels")
    width = block_align // channels  # bytes per sample as stored (the container)
    decoded = _decode(path, tag, width, bits, samples[: len(samples) - len(samples) % block_align])
    if decoded.size == 0:
        raise PromptError(path, "no audio samples (data chunk is empty)")
    frames = decoded.size // channels
    info = WavInfo(tag, channels, rate, width * 8, frames)
    return info, decoded.reshape(frames, channels)


def _decode(path: str, tag: int, width: int, bits: int, raw: bytes) -> Float32Array:
    name = _FORMAT_NAMES.get(tag, f"format 0x{tag:04x}")
    if tag == WAVE_FORMAT_PCM:
        if width == 1:
            return ((np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0).astype(np.float32)
        if width == 2:
            return (np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0).astype(np.float32)
        if width == 3:
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
            value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            value = np.where(value & 0x800000, value - 0x1000000, value)
            return (value.astype(np.float32) / 8388608.0).astype(np.float32)
        if width == 4:
            return (np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    elif tag == WAVE_FORMAT_IEEE_FLOAT:
        if width == 4:
            return np.frombuffer(raw, "<f4").astype(np.float32)
        if width == 8:
            return np.frombuffer(raw, "<f8").astype(np.float32)
    elif tag in (WAVE_FORMAT_MULAW, WAVE_FORMAT_ALAW) and width == 1:
        table = ULAW_DECODE_TABLE if tag == WAVE_FORMAT_MULAW else ALAW_DECODE_TABLE
        return (table[np.frombuffer(raw, np.uint8)].astype(np.float32) / 32768.0).astype(np.float32)
    else:
        raise PromptError(path, f"unsupported WAV format {name} (only PCM, float, A-law, mu-law)")
    raise PromptError(path, f"unsupported sample size for {name}: {width * 8} bits (fmt says {bits})")


def convert(info: WavInfo, samples: Float32Array) -> Int16Array:
    """Mix down, resample to 8 kHz, quantise to int16 and pad to whole 20 ms frames."""
    mono = samples[:, 0] if info.channels == 1 else samples.mean(axis=1, dtype=np.float32)
    if info.sample_rate != RATE:
        mono = soxr.resample(mono, info.sample_rate, RATE, quality="HQ")
    scaled = np.clip(np.round(np.asarray(mono, dtype=np.float64) * 32768.0), -32768, 32767)
    return pad_to_frames(scaled.astype(np.int16))


def pad_to_frames(samples: Int16Array) -> Int16Array:
    """Zero-pad to a whole number of 160-sample frames."""
    short = (-len(samples)) % FRAME
    if short:
        samples = np.concatenate([samples, np.zeros(short, dtype=np.int16)])
    return samples


def load_wav(path: str | os.PathLike[str]) -> Int16Array:
    """Read and convert one WAV file (no caching)."""
    return _convert_bytes(_read_file(path), os.fspath(path))


def _read_file(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise PromptError(path, f"cannot read: {exc.strerror or exc}") from exc


def _convert_bytes(data: bytes, path: str) -> Int16Array:
    info, samples = read_wav(data, path)
    return convert(info, samples)


class PromptCache:
    """Converted prompts on disk (`<sha256>.npy` under `cache_dir`) with an in-memory LRU in front."""

    def __init__(self, cache_dir: str | os.PathLike[str], max_items: int = 128) -> None:
        self.cache_dir = Path(cache_dir)
        self.max_items = max_items
        self._memory: OrderedDict[str, Int16Array] = OrderedDict()
        self.conversions = 0  # how often a file was actually converted (for tests and metrics)
        self.disk_hits = 0
        self.memory_hits = 0

    @staticmethod
    def key_for(data: bytes) -> str:
        digest = hashlib.sha256()
        digest.update(f"ivr-prompt-converter:{CONVERTER_VERSION}:{RATE}\0".encode())
        digest.update(data)
        return digest.hexdigest()

    def load(self, path: str | os.PathLike[str]) -> Int16Array:
        """The prompt as 8 kHz int16 frames (a read-only array shared between callers)."""
        data = _read_file(path)
        key = self.key_for(data)
        cached = self._memory.get(key)
        if cached is not None:
            self._memory.move_to_end(key)
            self.memory_hits += 1
            return cached
        array = self._load_disk(key)
        if array is None:
            array = _convert_bytes(data, os.fspath(path))
            self.conversions += 1
            self._store_disk(key, array)
        else:
            self.disk_hits += 1
        array.setflags(write=False)
        self._memory[key] = array
        while len(self._memory) > self.max_items:
            self._memory.popitem(last=False)
        return array

    def _file_for(self, key: str) -> Path:
        return self.cache_dir / f"{key}.npy"

    def _load_disk(self, key: str) -> Int16Array | None:
        file = self._file_for(key)
        try:
            array = np.load(file, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # a damaged cache entry is simply converted again and overwritten
        if array.dtype != np.int16 or array.ndim != 1 or len(array) % FRAME:
            return None
        return np.asarray(array, dtype=np.int16)

    def _store_disk(self, key: str, array: Int16Array) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader in another process never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=f".{key[:16]}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
            os.replace(tmp, self._file_for(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def tone(freq: float, ms: int, amplitude: float = 0.3) -> Int16Array:
    """A sine tone at 8 kHz, `amplitude` as a fraction of full scale, padded to whole frames."""
    t = np.arange(RATE * ms // 1000, dtype=np.float64) / RATE
    return pad_to_frames(np.round(amplitude * 32767.0 * np.sin(2 * np.pi * freq * t)).astype(np.int16))


def silence(ms: int) -> Int16Array:
    """Digital silence of at least `ms` milliseconds, in whole frames."""
    samples = RATE * max(ms, 0) // 1000
    return np.zeros(-(-samples // FRAME) * FRAME, dtype=np.int16)
