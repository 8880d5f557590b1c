"""A handful of speaking calls through the speech bench, so the harness never rots (the full run
with 100 callers is made by hand and tabled in BENCHMARKS.md). Asserts what must hold on any
machine: every call answered and routed right, latency measured, every caller sending a packet
every 20 ms for the whole call; no timing thresholds."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.speech_caller import SILENCE, VOICED_RMS, RoomNoise, Utterance, rms
from ivr.media.g711 import ulaw_decode
from ivr.media.vad import SpeechEnd, Vad, VadConfig
from tests.server import REPO
from tests.speech import spoken


def test_speech_bench_places_calls_and_measures_the_answer(tmp_path: Path) -> None:
    figures, table = tmp_path / "figures.json", tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench.speech_calls", "--levels", "3", "--seconds", "4",
         "--variants", "default,early", "--rtp-base", "44000", "--noise-dbfs", "-55",
         "--json", str(figures), "--append", str(table)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["variant"]: row for row in json.loads(figures.read_text())}
    for row in rows.values():
        assert row["calls"] == row["answered"] == row["answers"] == row["right"] == 3, json.dumps(row)
        assert row["failures"] == 0 and row["recognitions"] == 3, row
        for name in ("latency_p50_ms", "latency_p95_ms", "decode_p50_ms"):
            assert math.isfinite(row[name]) and row[name] > 0, (name, row)
        # Every call sent (nearly) one packet per 20 ms of its length, noise and words alike: the
        # stream did not stop between the prompt and the phrase, nor after it.
        assert row["noise_dbfs"] == -55.0
        assert row["packets_due"] > 3 * 50 * 2, row  # each call lasts seconds, not a few packets
        assert row["sent_share_lowest"] >= 0.9, row
    assert rows["default"]["early"] == 0 and rows["early"]["early"] >= 1
    # The answer cannot come before the closing silence that the default waits for.
    assert rows["default"]["latency_p50_ms"] > 600
    text = table.read_text()
    assert "Callers send audio continuously" in text and "Gaussian noise at -55 dBFS" in text
    assert "| 600 ms closing silence (default) | 3 | 3 | 3 | 3 | 0 |" in text
    assert "| early_match: 200ms | 3 | 3 | 3 | 3 | 0 |" in text


def _rms(payload: bytes) -> float:
    return rms(ulaw_decode(payload))


def test_noise_leaves_the_end_of_speech_where_it_was() -> None:
    samples = spoken("상담원", lead=0.0, tail=0.0)
    clean = Utterance.of("상담원", samples)
    noise = RoomNoise.at(-55.0)
    noisy = Utterance.of("상담원", samples, noise)
    assert noisy.last_voiced == clean.last_voiced and len(noisy.payloads) == len(clean.payloads)
    assert noisy.payloads != clean.payloads  # the room is under the words too
    # The noise between words is never voiced, so the caller's end of speech stays the last word.
    assert max(_rms(p) for p in noise.payloads) < VOICED_RMS
    assert all(_rms(p) < VOICED_RMS for p in noisy.payloads[noisy.last_voiced + 1 :])
    assert -56.0 < noise.sent_dbfs() < -54.0


def _speech_end(noise: RoomNoise, phrase: str) -> int | None:
    """Frames from the caller's last voiced packet to the IVR VAD's end of speech, or None."""
    utterance = Utterance.of(phrase, spoken(phrase, lead=0.0, tail=0.0), noise)
    between = [noise.payloads[i % len(noise.payloads)] for i in range(100)]
    vad = Vad()
    for index, payload in enumerate(between + utterance.payloads + between):
        if isinstance(vad.process(ulaw_decode(payload)), SpeechEnd):
            return index - len(between) - utterance.last_voiced
    return None


@pytest.mark.parametrize("phrase", ["예약", "아니요", "상담원"])
def test_the_vad_ends_the_turn_on_the_callers_noise(phrase: str) -> None:
    # The closing silence counts noise packets as quiet: the turn ends on the same frame as it
    # does on digital silence, one closing silence after the word.
    on_silence = _speech_end(RoomNoise.at(None), phrase)
    assert on_silence is not None and on_silence >= VadConfig().end_silence_ms // 20
    assert _speech_end(RoomNoise.at(-55.0), phrase) == on_silence


def test_noise_off_sends_digital_silence_and_loud_noise_is_refused() -> None:
    off = RoomNoise.at(None)
    assert off.payloads == (SILENCE,) and off.sent_dbfs() == -math.inf
    with pytest.raises(ValueError, match="voiced frames"):
        RoomNoise.at(-38.0)
