from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ivr.media.g711 import alaw_encode, ulaw_encode
from ivr.media.prompts import (
    PromptCache,
    PromptError,
    load_wav,
    read_wav,
    silence,
    tone,
)

GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def sine(rate: int, seconds: float = 0.5, freq: float = 440.0, amp: float = 0.5) -> npt.NDArray[np.float64]:
    t = np.arange(int(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def wav_bytes(
    samples: npt.NDArray[np.float64],
    rate: int,
    fmt: str,
    channels: int = 1,
    extensible: bool = False,
    extra_chunks: bytes = b"",
) -> bytes:
    """Encode float samples (frames,) or (frames, channels) as a WAV of the given format."""
    x = samples.reshape(len(samples), 1) if samples.ndim == 1 else samples
    if x.shape[1] != channels:
        x = np.repeat(x[:, :1], channels, axis=1)
    flat = x.reshape(-1)
    if fmt == "u8":
        tag, width, raw = 1, 1, np.clip(np.round(flat * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    elif fmt == "s16":
        tag, width, raw = 1, 2, np.round(flat * 32767).astype("<i2").tobytes()
    elif fmt == "s24":
        v = np.round(flat * 8388607).astype("<i4").tobytes()
        tag, width, raw = 1, 3, b"".join(v[i : i + 3] for i in range(0, len(v), 4))
    elif fmt == "s32":
        tag, width, raw = 1, 4, np.round(flat * 2147483647).astype("<i4").tobytes()
    elif fmt == "f32":
        tag, width, raw = 3, 4, flat.astype("<f4").tobytes()
    elif fmt == "f64":
        tag, width, raw = 3, 8, flat.astype("<f8").tobytes()
    elif fmt == "ulaw":
        tag, width, raw = 7, 1, ulaw_encode(np.round(flat * 32767).astype(np.int16))
    elif fmt == "alaw":
        tag, width, raw = 6, 1, alaw_encode(np.round(flat * 32767).astype(np.int16))
    else:
        raise AssertionError(fmt)
    block = width * channels
    if extensible:
        fmt_chunk = (
            struct.pack(
                "<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, width * 8, 22, width * 8, 0
            )
            + struct.pack("<H", tag)
            + GUID_TAIL
        )
    else:
        fmt_chunk = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, width * 8)
        if tag != 1:
            fmt_chunk += b"\x00\x00"  # cbSize
    pad = b"\x00" if len(raw) % 2 else b""
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt_chunk))
        + fmt_chunk
        + extra_chunks
        + b"data"
        + struct.pack("<I", len(raw))
        + raw
        + pad
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def check_sine(samples: npt.NDArray[np.int16], seconds: float = 0.5, amp: float = 0.5) -> None:
    assert samples.dtype == np.int16
    assert len(samples) % 160 == 0
    assert len(samples) == -(-int(8000 * seconds) // 160) * 160
    body = samples[400:3600].astype(np.float64)
    peak = np.abs(body).max()
    assert abs(peak - amp * 32767) < 0.03 * 32767
    spectrum = np.abs(np.fft.rfft(body * np.hanning(len(body))))
    assert abs(np.argmax(spectrum) * 8000 / len(body) - 440) < 5


FORMATS = ["u8", "s16", "s24", "s32", "f32", "f64", "ulaw", "alaw"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_formats_rates_channels(tmp_path: Path, fmt: str, rate: int, channels: int) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(wav_bytes(sine(rate), rate, fmt, channels))
    check_sine(load_wav(path))


@pytest.mark.parametrize("fmt", FORMATS)
def test_extensible(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(wav_bytes(sine(16000), 16000, fmt, 2, extensible=True))
    check_sine(load_wav(path))


def test_stereo_is_mixed_down(tmp_path: Path) -> None:
    left = sine(8000, amp=0.4)
    stereo = np.stack([left, -left], axis=1)  # opposite phase cancels in the mix
    path = tmp_path / "x.wav"
    path.write_bytes(wav_bytes(stereo, 8000, "s16", 2))
    assert np.abs(load_wav(path)).max() <= 1
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path.write_bytes(wav_bytes(stereo, 8000, "s16", 2))
    check_sine(load_wav(path), amp=0.2)


def test_8khz_s16_is_bit_exact(tmp_path: Path) -> None:
    samples = np.random.default_rng(3).integers(-32768, 32767, 1000).astype(np.int16)
    path = tmp_path / "x.wav"
    path.write_bytes(wav_bytes(samples / 32767, 8000, "s16"))
    out = load_wav(path)
    assert len(out) == 1120
    assert np.array_equal(out[:1000], np.round(samples / 32767 * 32767).astype(np.int16))
    assert not out[1000:].any()


def test_unknown_chunks_and_odd_sizes_skipped(tmp_path: Path) -> None:
    extra = b"LIST" + struct.pack("<I", 5) + b"abcde\x00" + b"fact" + struct.pack("<I", 4) + b"\x00" * 4
    path = tmp_path / "x.wav"
    path.write_bytes(wav_bytes(sine(8000), 8000, "s16", extra_chunks=extra))
    check_sine(load_wav(path))


@pytest.mark.parametrize(
    ("args", "amp"),
    [
        (["-r", "8000", "-e", "signed-integer", "-b", "16", "-c", "1"], 0.5),
        (["-r", "44100", "-e", "floating-point", "-b", "32", "-c", "2"], 0.5),
        (["-r", "48000", "-e", "floating-point", "-b", "64", "-c", "1"], 0.5),
        (["-r", "22050", "-e", "signed-integer", "-b", "24", "-c", "2"], 0.5),
        (["-r", "16000", "-e", "signed-integer", "-b", "32", "-c", "1"], 0.5),
        (["-r", "8000", "-e", "mu-law", "-c", "1"], 0.5),
        (["-r", "8000", "-e", "a-law", "-c", "2"], 0.5),
        (["-r", "11025", "-e", "unsigned-integer", "-b", "8", "-c", "1"], 0.5),
    ],
)
def test_sox_generated(tmp_path: Path, args: list[str], amp: float) -> None:
    path = tmp_path / "sox.wav"
    subprocess.run(
        ["sox", "-n", *args, str(path), "synth", "0.5", "sine", "440", "vol", str(amp)],
        check=True,
        capture_output=True,
    )
    check_sine(load_wav(path), amp=amp)


def error_for(tmp_path: Path, data: bytes) -> PromptError:
    path = tmp_path / "bad.wav"
    path.write_bytes(data)
    with pytest.raises(PromptError) as info:
        load_wav(path)
    assert info.value.path == str(path)
    assert str(info.value).startswith(str(path) + ": ")
    return info.value


def test_errors(tmp_path: Path) -> None:
    good = wav_bytes(sine(8000), 8000, "s16")
    assert error_for(tmp_path, b"").reason == "file is empty"
    assert error_for(tmp_path, b"ID3\x03 mp3 data here").reason == "not a RIFF/WAVE file"
    assert error_for(tmp_path, b"RIFF\x00\x00\x00\x00AVI LIST").reason == "RIFF but not WAVE"
    assert "truncated" in error_for(tmp_path, good[:-100]).reason
    assert "truncated" in error_for(tmp_path, good[:30]).reason
    assert error_for(tmp_path, good[:36]).reason == "no data chunk"
    no_fmt = b"RIFF" + struct.pack("<I", 12) + b"WAVE" + b"data" + struct.pack("<I", 0)
    assert error_for(tmp_path, no_fmt).reason == "data chunk comes before the fmt chunk"
    assert "no audio samples" in error_for(tmp_path, wav_bytes(sine(8000, 0), 8000, "s16")).reason
    adpcm = bytearray(good)
    adpcm[20:22] = struct.pack("<H", 2)
    assert "unsupported WAV format format 0x0002" in error_for(tmp_path, bytes(adpcm)).reason
    odd_float = bytearray(wav_bytes(sine(8000), 8000, "s16"))
    odd_float[20:22] = struct.pack("<H", 3)
    assert "unsupported sample size for IEEE float: 16 bits" in error_for(tmp_path, bytes(odd_float)).reason
    with pytest.raises(PromptError, match="cannot read"):
        load_wav(tmp_path / "missing.wav")


def test_streaming_length_placeholder_accepted() -> None:
    data = bytearray(wav_bytes(sine(8000), 8000, "s16"))
    data[40:44] = b"\xff\xff\xff\xff"
    info, samples = read_wav(bytes(data))
    assert info.frames == 4000
    assert samples.shape == (4000, 1)


def test_cache_converts_once_and_survives_processes(tmp_path: Path) -> None:
    src = tmp_path / "p.wav"
    src.write_bytes(wav_bytes(sine(44100), 44100, "f32", 2))
    cache_dir = tmp_path / "cache"
    cache = PromptCache(cache_dir)
    first = cache.load(src)
    assert cache.conversions == 1
    assert cache.load(src) is first
    assert cache.memory_hits == 1
    assert not first.flags.writeable
    assert len(list(cache_dir.glob("*.npy"))) == 1

    other = PromptCache(cache_dir)  # as a second worker would
    again = other.load(src)
    assert other.conversions == 0 and other.disk_hits == 1
    assert np.array_equal(again, first)

    script = (
        "import sys; from ivr.media.prompts import PromptCache; "
        "c = PromptCache(sys.argv[1]); a = c.load(sys.argv[2]); print(c.conversions, c.disk_hits, len(a))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(cache_dir), str(src)], check=True, capture_output=True, text=True
    )
    assert out.stdout.split() == ["0", "1", str(len(first))]


def test_cache_reconverts_changed_file_and_damaged_entry(tmp_path: Path) -> None:
    src = tmp_path / "p.wav"
    src.write_bytes(wav_bytes(sine(8000), 8000, "s16"))
    cache = PromptCache(tmp_path / "c")
    a = cache.load(src)
    src.write_bytes(wav_bytes(sine(8000, amp=0.25), 8000, "s16"))
    b = cache.load(src)
    assert cache.conversions == 2
    assert np.abs(b).max() < np.abs(a).max()
    for entry in (tmp_path / "c").glob("*.npy"):
        entry.write_bytes(b"garbage")
    fresh = PromptCache(tmp_path / "c")
    assert np.array_equal(fresh.load(src), b)
    assert fresh.conversions == 1


def test_cache_lru_bound(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path / "c", max_items=2)
    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.wav"
        p.write_bytes(wav_bytes(sine(8000, freq=300 + 100 * i), 8000, "s16"))
        paths.append(p)
        cache.load(p)
    cache.load(paths[0])  # evicted from memory, still on disk
    assert cache.disk_hits == 1 and cache.conversions == 3


def test_cache_reports_errors_with_file_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(PromptError, match=r"bad\.wav: not a RIFF/WAVE file"):
        PromptCache(tmp_path / "c").load(bad)


def test_tone_and_silence() -> None:
    t = tone(1000, 50)
    assert len(t) == 480 and t.dtype == np.int16
    assert abs(int(np.abs(t[:400]).max()) - round(0.3 * 32767)) < 50
    assert not t[400:].any()
    assert len(silence(20)) == 160
    assert len(silence(30)) == 320
    assert len(silence(0)) == 0
    assert not silence(100).any()
