"""Speaking callers over real SIP/RTP, all in one thread: the caller side of bench/speech_calls.py.

Each caller dials the IVR, listens to the menu prompt to its end, stays quiet for a random 1-3 s
(as people do before answering a menu), says a menu phrase and keeps sending room noise until the
IVR answers; when the IVR hangs up, it dials again, until the run's time is over.

Like a phone, a caller sends one G.711 mu-law packet every 20 ms from the 200 OK to the hang-up,
paced from absolute deadlines so lateness never adds up. Between the words the packets carry
``RoomNoise``: Gaussian noise at a set level (a handset in a quiet room, -55 dBFS by default), or
digital silence when the level is off; the same noise lies under the words. Each turn counts the
packets it sent and its longest gap between two of them, so a run shows that the stream never
paused.
SIP is the hand-written text of tests/rtp_probe.py over plain sockets: nothing here shares code
with the server's engine, so what is measured is what a phone on the line would see.

What each turn records, on the caller's own monotonic clock:
- ``speech_end``: when the packet carrying the phrase's last voiced frame was sent. Voiced is
  judged on the clean phrase (RMS above -40 dBFS) before the noise is laid under it, so the
  packet is the same at every noise level; the phrase's own trailing quiet and the noise after it
  are not speech (the noise is kept below -40 dBFS for that reason);
- ``answer_at``: when the first RTP packet of the IVR's answer arrived (the IVR sends nothing
  while it listens, so the first packet after the caller spoke is the answer prompt).
Which step answered is not visible on the wire; the bench reads it from the server's log.
"""

from __future__ import annotations

import math
import random
import selectors
import socket
import struct
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from ivr.media.g711 import ulaw_decode, ulaw_encode
from tests.rtp_probe import StreamRecord, _Call, _header, _request, _sdp, _sdp_media
from tests.speech import Int16Array, frames, white_noise

FRAME_SECONDS = 0.020
VOICED_RMS = 300.0  # about -40 dBFS, as the listener's noise gate judges loud frames
SILENCE = b"\xff" * 160  # mu-law digital silence
NOISE_SECONDS = 10.0  # the noise each caller cycles through, from its own starting point
PROMPT_GAP = 0.5  # no RTP for this long after the prompt started: the prompt is over
ANSWER_TIMEOUT = 10.0  # seconds after speaking with no answer: a failed turn
PROMPT_TIMEOUT = 20.0  # seconds after the answer without a complete prompt: a failed turn


def rms(samples: Int16Array) -> float:
    """Root mean square of int16 samples, in sample units (full scale 32768)."""
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


@dataclass(frozen=True)
class RoomNoise:
    """The background a caller's phone picks up: PCM to lay under words, and its mu-law packets.

    ``dbfs`` is the noise's RMS relative to full scale (32768), None for digital silence. The
    VAD reads levels against a full-scale sine and in the voice band only, so it sees white noise
    about 2 dB higher than this figure.
    """

    dbfs: float | None
    samples: Int16Array
    payloads: tuple[bytes, ...]

    @classmethod
    def at(cls, dbfs: float | None, *, seed: int = 1) -> RoomNoise:
        if dbfs is None:
            return cls(None, np.zeros(160, np.int16), (SILENCE,))
        samples = white_noise(NOISE_SECONDS, 32768.0 * 10.0 ** (dbfs / 20.0), seed)
        blocks = frames(samples)
        if max(rms(f) for f in blocks) >= VOICED_RMS:
            # A noise packet that counts as voiced would move the caller's end of speech.
            raise ValueError(
                f"noise at {dbfs} dBFS has voiced frames (RMS >= {VOICED_RMS:.0f}, about -41 dBFS); "
                "keep it quieter so that the end of speech stays the last word"
            )
        return cls(dbfs, samples, tuple(ulaw_encode(f) for f in blocks))

    def under(self, speech: Int16Array) -> Int16Array:
        """``speech`` with this noise added, as a microphone in the room hears it."""
        bed = np.resize(self.samples, len(speech)).astype(np.int32)
        mixed: Int16Array = np.clip(speech.astype(np.int32) + bed, -32768, 32767).astype(np.int16)
        return mixed

    def sent_dbfs(self) -> float:
        """The level actually on the wire, after G.711 (-inf for digital silence)."""
        level = rms(ulaw_decode(b"".join(self.payloads)))
        return 20.0 * math.log10(level / 32768.0) if level > 0.0 else -math.inf


@dataclass
class Utterance:
    """A phrase as the caller sends it: mu-law payloads and the index of its last voiced frame."""

    phrase: str
    payloads: list[bytes]
    last_voiced: int

    @classmethod
    def of(cls, phrase: str, samples: Int16Array, noise: RoomNoise | None = None) -> Utterance:
        blocks = frames(samples)
        loud = [i for i, f in enumerate(blocks) if rms(f) > VOICED_RMS]
        if not loud:
            raise ValueError(f"{phrase!r} has no voiced frame")
        if noise is not None and noise.dbfs is not None:
            blocks = frames(noise.under(samples))
        return cls(phrase, [ulaw_encode(f) for f in blocks], loud[-1])


@dataclass
class Turn:
    """One call: dial, prompt, a spoken phrase, the IVR's answer."""

    call_id: str
    phrase: str
    dialled_at: float
    status: int | None = None
    setup_ms: float | None = None
    speech_end: float | None = None
    answer_at: float | None = None
    failure: str = ""  # why the turn failed, "" if it did not
    media_from: float | None = None  # the 200 OK: packets are due from here
    media_to: float | None = None  # the hang-up (either side's BYE): no packet is due after it
    packets_sent: int = 0
    longest_gap_ms: float = 0.0  # between two packets this caller sent

    @property
    def latency_ms(self) -> float | None:
        if self.speech_end is None or self.answer_at is None:
            return None
        return 1000.0 * (self.answer_at - self.speech_end)

    @property
    def packets_due(self) -> float | None:
        """How many packets a phone sends over this call: its length in 20 ms frames."""
        if self.media_from is None or self.media_to is None:
            return None
        return (self.media_to - self.media_from) / FRAME_SECONDS


@dataclass
class _Line:
    """One caller's current call: SIP dialog state, where it is in its script, RTP counters."""

    call: _Call
    turn: Turn
    utterance: Utterance
    noise: RoomNoise
    state: str = "inviting"  # inviting, prompt, quiet, speaking, waiting, answered, bye-sent
    since: float = 0.0
    last_rx: float = 0.0
    speak_at: float = 0.0
    position: int = 0
    seq: int = 0
    timestamp: int = 0
    ssrc: int = 0
    noise_at: int = 0  # the next noise packet
    last_sent: float | None = None


@dataclass
class _Caller:
    next_dial: float
    line: _Line | None = None
    turns: list[Turn] = field(default_factory=list)


def run_callers(
    target: tuple[str, int],
    callers: int,
    seconds: float,
    utterances: list[Utterance],
    noise: RoomNoise,
    *,
    seed: int = 1,
    arrival: float = 3.0,
) -> list[Turn]:
    """``callers`` callers dial ``target`` over and over for ``seconds``; every turn, in order.

    ``noise`` is what the callers send between words; ``utterances`` should carry the same
    noise under them (``Utterance.of(..., noise)``).

    First calls are spread over ``arrival`` seconds; no new call starts after ``seconds``, and
    calls in progress are allowed to finish.
    """
    rng = random.Random(seed)
    selector = selectors.DefaultSelector()
    begin = time.monotonic()
    end = begin + seconds
    people = [_Caller(begin + rng.uniform(0.0, arrival)) for _ in range(callers)]
    tick = begin
    try:
        while True:
            now = time.monotonic()
            for person in people:
                if person.line is None and person.next_dial <= now < end:
                    person.line = _dial(target, selector, rng.choice(utterances), noise, now)
                    person.line.noise_at = rng.randrange(len(noise.payloads))
                    person.turns.append(person.line.turn)
            if now >= end and all(p.line is None for p in people):
                break
            for key, _ in selector.select(timeout=max(0.0, tick - time.monotonic())):
                line: _Line = key.data
                try:
                    data = key.fileobj.recv(4096)  # type: ignore[union-attr]
                except OSError:
                    continue
                stamp = time.monotonic()
                if key.fileobj is line.call.rtp:
                    _on_rtp(line, stamp, rng)
                else:
                    _on_sip(line, data.decode(errors="replace"), target, stamp)
            now = time.monotonic()
            if now >= tick:
                tick += FRAME_SECONDS
                if now - tick > 0.2:
                    tick = now  # far behind (a stall): resume pacing from now, no burst
                for person in people:
                    current = person.line
                    if current is None:
                        continue
                    _step(current, target, now)
                    if current.state == "done":
                        _close(current, selector)
                        person.line = None
                        person.next_dial = now + rng.uniform(0.5, 1.5)
    finally:
        for person in people:
            if person.line is not None:
                _close(person.line, selector)
        selector.close()
    return [turn for person in people for turn in person.turns]


def _dial(
    target: tuple[str, int],
    selector: selectors.BaseSelector,
    utterance: Utterance,
    noise: RoomNoise,
    now: float,
) -> _Line:
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind(("127.0.0.1", 0))
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    call = _Call(StreamRecord(uuid.uuid4().hex), sip, rtp, now, uuid.uuid4().hex[:8])
    line = _Line(call, Turn(call.record.call_id, utterance.phrase, now), utterance, noise, since=now)
    line.ssrc = random.getrandbits(32)
    selector.register(sip, selectors.EVENT_READ, line)
    selector.register(rtp, selectors.EVENT_READ, line)
    sip.sendto(_request("INVITE", target, call, _sdp(rtp.getsockname()[1])), target)
    return line


def _close(line: _Line, selector: selectors.BaseSelector) -> None:
    for sock in (line.call.sip, line.call.rtp):
        selector.unregister(sock)
        sock.close()


def _fail(line: _Line, target: tuple[str, int], why: str, now: float) -> None:
    line.turn.failure = line.turn.failure or why
    _bye(line, target, now)


def _bye(line: _Line, target: tuple[str, int], now: float) -> None:
    if line.call.remote_rtp is None:
        line.state = "done"
        return
    line.call.cseq += 1
    line.call.sip.sendto(_request("BYE", target, line.call), target)
    line.state, line.since = "bye-sent", now
    line.turn.media_to = line.turn.media_to or now


def _step(line: _Line, target: tuple[str, int], now: float) -> None:
    """One 20 ms tick of a caller's script: send this tick's packet, move on when it is time."""
    state = line.state
    if state == "done":
        return
    if state == "inviting":
        if now - line.since > 10.0:
            line.turn.failure = "no answer to INVITE"
            line.state = "done"
        return
    if state == "bye-sent":
        if now - line.since > 2.0:
            line.state = "done"
        return
    if state == "prompt":
        if line.last_rx and now - line.last_rx > PROMPT_GAP:
            line.state = "quiet"
        elif now - line.since > PROMPT_TIMEOUT:
            _fail(line, target, "prompt never ended", now)
            return
    if line.state == "quiet" and now >= line.speak_at:
        line.state, line.position = "speaking", 0
    if line.state == "speaking":
        payload = line.utterance.payloads[line.position]
        if line.position == len(line.utterance.payloads) - 1:
            line.state, line.since = "waiting", now
        line.position += 1
    else:
        payloads = line.noise.payloads
        payload = payloads[line.noise_at % len(payloads)]
        line.noise_at += 1
    _send(line, payload, now)
    if line.state in ("speaking", "waiting") and line.position == line.utterance.last_voiced + 1:
        if line.turn.speech_end is None:
            line.turn.speech_end = time.monotonic()
    if line.state == "waiting" and now - line.since > ANSWER_TIMEOUT:
        _fail(line, target, "no answer to the phrase", now)
    elif line.state == "answered" and now - line.since > 15.0:
        _fail(line, target, "the IVR did not hang up", now)


def _send(line: _Line, payload: bytes, now: float) -> None:
    if line.call.remote_rtp is None:
        return
    turn = line.turn
    if line.last_sent is not None:
        turn.longest_gap_ms = max(turn.longest_gap_ms, 1000.0 * (now - line.last_sent))
    line.last_sent = now
    turn.packets_sent += 1
    header = struct.pack("!BBHII", 0x80, 0, line.seq & 0xFFFF, line.timestamp & 0xFFFFFFFF, line.ssrc)
    line.seq += 1
    line.timestamp += 160
    try:
        line.call.rtp.sendto(header + payload, line.call.remote_rtp)
    except OSError:
        pass


def _on_rtp(line: _Line, stamp: float, rng: random.Random) -> None:
    if line.state == "prompt":
        if not line.last_rx:
            line.since = stamp
        line.last_rx = stamp
        line.speak_at = stamp + rng.uniform(1.0, 3.0)  # counted from the prompt's last packet
    elif line.state == "quiet":
        line.state = "prompt"  # only a pause inside the prompt: wait for its real end
        line.last_rx = stamp
        line.speak_at = stamp + rng.uniform(1.0, 3.0)
    elif line.state in ("speaking", "waiting") and line.turn.answer_at is None:
        line.turn.answer_at = stamp
        if line.turn.speech_end is None:
            line.turn.failure = "answered before the caller finished speaking"
        line.state, line.since = "answered", stamp


def _on_sip(line: _Line, text: str, target: tuple[str, int], stamp: float) -> None:
    call, turn = line.call, line.turn
    first = text.split("\r\n", 1)[0]
    if first.startswith("SIP/2.0 "):
        status = int(first.split()[1])
        cseq = _header(text, "CSeq")
        if "INVITE" in cseq and status >= 200:
            turn.status = status
            if status < 300:
                call.to_header = _header(text, "To")
                call.remote_rtp = _sdp_media(text)
                call.sip.sendto(_request("ACK", target, call), target)
                if line.state == "inviting":
                    turn.setup_ms = 1000.0 * (stamp - turn.dialled_at)
                    turn.media_from = stamp
                    line.state, line.since = "prompt", stamp
            else:
                turn.failure = f"INVITE answered {status}"
                line.state = "done"
        elif "BYE" in cseq:
            line.state = "done"
        return
    if first.startswith("BYE "):
        reply = ["SIP/2.0 200 OK", *(_header(text, h) for h in ("Via", "From", "To", "Call-ID", "CSeq"))]
        reply.append("Content-Length: 0")
        call.sip.sendto(("\r\n".join(reply) + "\r\n\r\n").encode(), target)
        turn.media_to = turn.media_to or stamp
        if turn.answer_at is None:
            turn.failure = turn.failure or f"IVR hung up in state {line.state}"
        line.state = "done"
