"""Speaking callers over real SIP/RTP, all in one thread: the caller side of bench/speech_calls.py.

Each caller dials the IVR, listens to the menu prompt to its end, stays quiet for a random 1-3 s
(as people do before answering a menu), says a menu phrase and keeps sending silence until the
IVR answers; when the IVR hangs up, it dials again, until the run's time is over.

Like a phone, a caller sends one G.711 mu-law packet every 20 ms for as long as the call is up
(silence while it is not speaking), paced from absolute deadlines so lateness never adds up.
SIP is the hand-written text of tests/rtp_probe.py over plain sockets: nothing here shares code
with the server's engine, so what is measured is what a phone on the line would see.

What each turn records, on the caller's own monotonic clock:
- ``speech_end``: when the packet carrying the phrase's last voiced frame (RMS above -40 dBFS)
  was sent; the phrase's own trailing quiet and the silence after it are not speech;
- ``answer_at``: when the first RTP packet of the IVR's answer arrived (the IVR sends nothing
  while it listens, so the first packet after the caller spoke is the answer prompt).
Which step answered is not visible on the wire; the bench reads it from the server's log.
"""

from __future__ import annotations

import random
import selectors
import socket
import struct
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from ivr.media.g711 import ulaw_encode
from tests.rtp_probe import StreamRecord, _Call, _header, _request, _sdp, _sdp_media
from tests.speech import Int16Array, frames

FRAME_SECONDS = 0.020
VOICED_RMS = 300.0  # about -40 dBFS, as the listener's noise gate judges loud frames
SILENCE = b"\xff" * 160  # mu-law digital silence
PROMPT_GAP = 0.5  # no RTP for this long after the prompt started: the prompt is over
ANSWER_TIMEOUT = 10.0  # seconds after speaking with no answer: a failed turn
PROMPT_TIMEOUT = 20.0  # seconds after the answer without a complete prompt: a failed turn


@dataclass
class Utterance:
    """A phrase as the caller sends it: mu-law payloads and the index of its last voiced frame."""

    phrase: str
    payloads: list[bytes]
    last_voiced: int

    @classmethod
    def of(cls, phrase: str, samples: Int16Array) -> Utterance:
        blocks = frames(samples)
        loud = [i for i, f in enumerate(blocks) if np.sqrt(np.mean(f.astype(np.float64) ** 2)) > VOICED_RMS]
        if not loud:
            raise ValueError(f"{phrase!r} has no voiced frame")
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

    @property
    def latency_ms(self) -> float | None:
        if self.speech_end is None or self.answer_at is None:
            return None
        return 1000.0 * (self.answer_at - self.speech_end)


@dataclass
class _Line:
    """One caller's current call: SIP dialog state, where it is in its script, RTP counters."""

    call: _Call
    turn: Turn
    utterance: Utterance
    state: str = "inviting"  # inviting, prompt, quiet, speaking, waiting, answered, bye-sent
    since: float = 0.0
    last_rx: float = 0.0
    speak_at: float = 0.0
    position: int = 0
    seq: int = 0
    timestamp: int = 0
    ssrc: int = 0


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
    *,
    seed: int = 1,
    arrival: float = 3.0,
) -> list[Turn]:
    """``callers`` callers dial ``target`` over and over for ``seconds``; every turn, in order.

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
                    person.line = _dial(target, selector, rng.choice(utterances), now)
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
    target: tuple[str, int], selector: selectors.BaseSelector, utterance: Utterance, now: float
) -> _Line:
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind(("127.0.0.1", 0))
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    call = _Call(StreamRecord(uuid.uuid4().hex), sip, rtp, now, uuid.uuid4().hex[:8])
    line = _Line(call, Turn(call.record.call_id, utterance.phrase, now), utterance, since=now)
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
    payload = SILENCE
    if line.state == "speaking":
        payload = line.utterance.payloads[line.position]
        if line.position == len(line.utterance.payloads) - 1:
            line.state, line.since = "waiting", now
        line.position += 1
    _send(line, payload)
    if line.state in ("speaking", "waiting") and line.position == line.utterance.last_voiced + 1:
        if line.turn.speech_end is None:
            line.turn.speech_end = time.monotonic()
    if line.state == "waiting" and now - line.since > ANSWER_TIMEOUT:
        _fail(line, target, "no answer to the phrase", now)
    elif line.state == "answered" and now - line.since > 15.0:
        _fail(line, target, "the IVR did not hang up", now)


def _send(line: _Line, payload: bytes) -> None:
    if line.call.remote_rtp is None:
        return
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
        if turn.answer_at is None:
            turn.failure = turn.failure or f"IVR hung up in state {line.state}"
        line.state = "done"
