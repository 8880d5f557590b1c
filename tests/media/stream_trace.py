"""A long, seeded, hostile session through MediaStream, printed as one digest.

Run as ``python -m tests.media.stream_trace``: once with the compiled media plane and once with
``IVR_PURE_PYTHON=1`` (its Python source, the reference), and the two digests must be equal
(tests/test_compiled_media.py). Everything the stream sends, every event it reports, its
statistics and its recording go into the digest, so any difference in behaviour shows.

The caller does what phones and networks do: 20 ms PCMU for the whole call, reordering, loss,
duplicates, a late burst, a new SSRC, 30 ms packets for a while, RFC 4733 keys with repeated
end packets and one whose end is lost, in-band tones, a stranger's packets, malformed datagrams;
the server side plays a prompt, is barged in on, sends keys of its own, and ticks late at times.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import sys

import numpy as np

from ivr import _compiled
from ivr.media.goertzel import generate_dtmf
from ivr.media.stream import MediaEvent, MediaStream

HEADER = struct.Struct("!BBHII")
CALLER = ("127.0.0.1", 40000)
STRANGER = ("127.0.0.1", 41000)
FRAMES = 3000  # one minute


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return HEADER.pack(0x80, pt | (0x80 if marker else 0), seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def event(digit: int, end: bool, duration: int) -> bytes:
    return struct.pack("!BBH", digit, (0x80 if end else 0) | 10, duration)


class Told:
    """The stream's listener: every event it reports, and a barge-in on keys received between
    ticks (those a tick reports, in-band and timed out, are only noted)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.ticking = False

    def on_frame(self, stream: MediaStream, payload: bytes | None) -> None:
        pass

    def on_events(self, stream: MediaStream, events: list[MediaEvent]) -> None:
        for item in events:
            self.events.append(repr(item))
            if not self.ticking and stream.player.stop_interruptible():
                self.events.append("barge-in")


def session(inband: bool) -> dict[str, object]:
    rng = random.Random(20261204 + inband)
    stream = MediaStream("PCMU", 101, CALLER, rng=random.Random(7), inband_dtmf=inband, record=True)
    stream.player.play(np.asarray(rng.choices(range(-8000, 8000), k=160 * 400), dtype=np.int16))
    tone = stream.codec.encode(generate_dtmf("5", 120))
    sent = hashlib.sha256()
    told = Told()
    stream.listener = told
    seq, ts, ssrc = 1000, 5000, 0xCAFE
    now = 100.0
    backlog: list[tuple[bytes, tuple[str, int]]] = []
    for frame in range(FRAMES):
        now += 0.020 if rng.random() > 0.01 else 0.020 * rng.randint(2, 6)  # a late tick now and then
        step = 240 if 1500 <= frame < 1600 else 160  # 30 ms packets for two seconds
        if frame == 900:
            ssrc, seq, ts = 0xBEEF, rng.getrandbits(16), rng.getrandbits(32)  # the phone restarted
        if frame in (400, 1200, 2400):
            key = frame // 400
            for n in range(6):
                packet = rtp(101, seq + n, ts, ssrc, event(key, n >= 3, 160 * (n + 1)), n == 0)
                backlog.append((packet, CALLER))
            seq += 4 if frame != 2400 else 3  # the last key loses its end packets
        elif inband and 2000 <= frame < 2006:
            chunk = tone[(frame - 2000) * 160 : (frame - 1999) * 160]
            backlog.append((rtp(0, seq, ts, ssrc, chunk), CALLER))
        else:
            payload = bytes(rng.getrandbits(8) for _ in range(step))
            backlog.append((rtp(0, seq, ts, ssrc, payload), CALLER))
        seq += 1
        ts += step
        if rng.random() < 0.02:
            backlog.append((rtp(0, rng.getrandbits(16), 0, 0x5EED, b"\xff" * 160), STRANGER))
        if rng.random() < 0.01:
            backlog.append((bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 20))), CALLER))
        if rng.random() < 0.02 and len(backlog) > 1:
            backlog[-1], backlog[-2] = backlog[-2], backlog[-1]  # reordered in transit
        if rng.random() < 0.01:
            backlog.pop()  # lost
        if rng.random() < 0.01 and backlog:
            backlog.append(backlog[-1])  # duplicated
        if rng.random() > 0.03:  # otherwise held back: a burst arrives with the next frame
            for data, source in backlog:
                stream.receive(data, source, now)
            backlog.clear()
        if frame == 700:
            stream.send_dtmf("12#")
        if frame == 1800:
            stream.player.play(np.asarray(rng.choices(range(-100, 100), k=160 * 50), dtype=np.int16))
        told.ticking = True
        packet = stream.tick(now)
        told.ticking = False
        if packet is not None:
            sent.update(len(packet).to_bytes(2, "big") + packet)
        if frame % 50 == 0 and stream.received_frame is not None:
            sent.update(stream.received_frame.tobytes())
    recording = stream.stop_recording()
    return {
        "sent": sent.hexdigest(),
        "events": told.events,
        "stats": repr(stream.stats),
        "jitter": repr(stream.jitter.stats),
        "recording": hashlib.sha256(recording.tobytes()).hexdigest(),
        "latched": stream.latched,
    }


def main() -> int:
    trace = {"rfc4733": session(False), "inband": session(True), "compiled": _compiled.running_compiled()}
    json.dump(trace, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
