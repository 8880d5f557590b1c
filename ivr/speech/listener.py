"""SpeechListener: endpointing and recognition for one call, fed by the call's 20 ms frames.

Attach ``listener.on_audio`` as the call's ``MediaStream.on_audio``; it runs on the event loop for
every received frame and stays cheap: it copies the frame into a 300 ms pre-roll ring and, only
while a ``listen`` is active, runs the voice activity detector (~16 us per frame).  Decoding never
runs on the loop: audio between speech start and speech end is handed to the decoding pool in
batches, one job in flight per call so the recognizer is used by one thread at a time.  Silence
before the caller speaks is never decoded, which is what lets one machine serve many listening
calls (continuous decoding of every stream costs several times more; see BENCHMARKS.md).

One ``listen`` at a time:

- speech start (the VAD's, so a click or line noise does not count) calls ``on_speech_start``,
  which is how the call stops its prompt (barge-in); the pre-roll goes to the recognizer first, so
  the syllable that the VAD needed 60 ms to trust is not lost;
- speech end (``end_silence_ms`` of quiet) or ``max_utterance`` seconds of speech ends the
  utterance; the result comes back with ``latency_ms`` from that moment to the decision;
- with ``early_match_ms`` (grammar only), a partial result that is exactly one allowed phrase and
  has stayed so over that much decoded quiet ends the utterance before the closing silence is
  complete (``ivr.speech.early``); the final decode still judges it;
- ``no_input_timeout`` seconds without speech start: ``noinput``.

Time is counted in received frames (20 ms each), so tests can feed frames as fast as they like;
a wall-clock watchdog covers streams that stop sending packets (silence suppression, a dead
line): it ends an utterance whose frames stopped for ``end_silence_ms`` and gives ``noinput`` when
no frames came at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from ivr.logs import get_logger
from ivr.media.vad import SpeechEnd, SpeechStart, Vad, VadConfig
from ivr.speech.early import EarlyMatch
from ivr.speech.models import VoskModel
from ivr.speech.recognizer import DEFAULT_THRESHOLD, Recognition, StreamingRecognizer, Word, decode_pool

__all__ = ["RecognitionSpec", "SpeechListener", "SpeechResult"]

Int16Array = npt.NDArray[np.int16]
FRAME_SECONDS = 0.020
MIN_BATCH_FRAMES = 10  # 100 ms per decoding job: fewer hand-offs, still well inside the latency budget
WATCHDOG_SECONDS = 0.1
WATCHDOG_GRACE = 0.5  # seconds the frame count gets to reach a timeout before the wall clock
log = get_logger()


@dataclass(frozen=True, slots=True)
class RecognitionSpec:
    """What to listen for.  ``grammar`` None: free-form (the flow matches the transcript itself).

    ``grammar`` maps each allowed phrase to the label it stands for (a menu choice); a sequence
    means each phrase is its own label.
    """

    grammar: Mapping[str, str] | Sequence[str] | None = None
    threshold: float = DEFAULT_THRESHOLD
    no_input_timeout: float = 5.0
    max_utterance: float = 15.0
    end_silence_ms: int | None = None  # None: the VAD configuration's
    partials: bool = False
    early_match_ms: int | None = None  # None: always wait for the whole closing silence

    def labels(self) -> dict[str, str]:
        if self.grammar is None:
            return {}
        if isinstance(self.grammar, Mapping):
            return dict(self.grammar)
        return {phrase: phrase for phrase in self.grammar}


@dataclass(frozen=True, slots=True)
class SpeechResult:
    kind: Literal["speech", "noinput", "nomatch"]
    text: str = ""
    confidence: float = 0.0
    words: tuple[Word, ...] = ()
    intent: str | None = None  # the grammar phrase's label
    score: float = 0.0  # the recognition's confidence
    latency_ms: float | None = None  # end of speech detected -> result
    speech_ms: float = 0.0  # length of the utterance as the VAD saw it
    early: bool = False  # ended by an early match, before the VAD's closing silence


@dataclass(eq=False)
class _Session:
    spec: RecognitionSpec
    future: asyncio.Future[SpeechResult]
    recognizer: StreamingRecognizer | None = None
    pending: list[Int16Array] = field(default_factory=list)
    busy: bool = False
    speaking: bool = False
    ending: bool = False  # end of speech seen; the final job is due
    frames: int = 0  # frames received while listening
    speech_frames: int = 0  # frames handed to the recognizer (pre-roll included)
    speech_ms: float = 0.0  # speech start to speech end, as the VAD stamps them
    start_stamp: int = 0
    start_frame: int = 0  # ``frames`` when the speech began
    early: EarlyMatch | None = None
    ended_early: bool = False
    ended_at: float | None = None
    started_wall: float = 0.0
    last_frame_wall: float = 0.0
    voiced_frames: int = 0  # speech frames judged by spectral flatness
    noise_frames: int = 0  # ... of which looked like noise, not voice


# Spectral flatness (geometric / arithmetic mean of the power spectrum) of a 20 ms frame: voiced
# speech has formants and harmonics and stays well below this; white or hiss-like noise is near 1.
NOISE_FLATNESS = 0.45


LOUD_RMS = 300.0  # about -40 dBFS: quieter frames (pauses, the end-of-speech silence) are not judged


def spectral_flatness(frame: Int16Array) -> float | None:
    """Flatness of a loud frame's spectrum, or None for a quiet frame."""
    samples = frame.astype(np.float64)
    if float(np.sqrt(np.mean(samples * samples))) < LOUD_RMS:
        return None
    power = np.abs(np.fft.rfft(samples))[4:70] ** 2 + 1e-9  # ~200-3400 Hz
    return float(np.exp(np.mean(np.log(power))) / np.mean(power))


class SpeechListener:
    def __init__(
        self,
        model: VoskModel,
        *,
        vad_config: VadConfig | None = None,
        executor: Executor | None = None,
        on_speech_start: Callable[[], None] | None = None,
        on_partial: Callable[[str], None] | None = None,
        pre_roll_ms: int = 600,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.model = model
        self.vad_config = vad_config if vad_config is not None else VadConfig()
        self.vad = Vad(self.vad_config)
        self.executor = executor if executor is not None else decode_pool()
        self.on_speech_start = on_speech_start
        self.on_partial = on_partial
        # Pre-roll: when speech cuts a prompt, the words began before this listener's turn; on a
        # busy server the turn can start a few hundred ms later, so keep enough to cover that.
        self._ring: deque[Int16Array] = deque(maxlen=max(1, pre_roll_ms // 20))
        self._loop = asyncio.get_running_loop()
        self._clock = clock if clock is not None else self._loop.time
        self._session: _Session | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.partial = ""

    @property
    def listening(self) -> bool:
        return self._session is not None

    # -- what the call/flow uses ---------------------------------------------------------------

    async def listen(self, spec: RecognitionSpec) -> SpeechResult:
        """Listen for one utterance (or its absence); see the module docstring."""
        return await self.start(spec)

    def start(self, spec: RecognitionSpec) -> asyncio.Future[SpeechResult]:
        """Begin listening now (frames from this call on count); await the returned future."""
        if self._session is not None:
            raise RuntimeError("this call is already listening")
        future: asyncio.Future[SpeechResult] = self._loop.create_future()
        session = _Session(spec, future, started_wall=self._loop.time(), last_frame_wall=self._loop.time())
        self._session = session
        self.partial = ""
        # Each turn gets the closing silence it asks for; a turn that asks none gets the default
        # back (a short menu silence must not stick to the free-form question after it).
        end_silence = spec.end_silence_ms or self.vad_config.end_silence_ms
        if end_silence != self.vad.config.end_silence_ms or self.vad.speaking:
            self._restart_vad(end_silence)
        phrases = list(spec.labels()) if spec.grammar is not None else None
        if phrases and spec.early_match_ms is not None:
            session.early = EarlyMatch.for_phrases(phrases, spec.early_match_ms)
        creating = self._loop.run_in_executor(
            self.executor, lambda: StreamingRecognizer(self.model, phrases, threshold=spec.threshold)
        )
        creating.add_done_callback(lambda f: self._created(session, f))
        future.add_done_callback(lambda _: self._close(session))
        self._arm_watchdog()
        # The caller may have started speaking already (speech cut the prompt just now): run the
        # pre-roll through the session so its VAD sees the onset and keeps those words.
        primed = list(self._ring)
        self._ring.clear()
        for frame in primed:
            if self._session is not session or session.ending:
                break
            self._feed(session, frame)
        return future

    def _restart_vad(self, end_silence_ms: int) -> None:
        """A fresh utterance state, keeping the noise floor the VAD has learnt on this line."""
        floor = self.vad.floor_db
        self.vad = Vad(dataclasses.replace(self.vad_config, end_silence_ms=end_silence_ms))
        self.vad.floor_db = floor

    def cancel(self) -> None:
        """Stop listening (the call ended or the flow moved on); a pending ``listen`` is cancelled."""
        session = self._session
        if session is not None:
            session.future.cancel()
            self._close(session)

    # -- the per-frame path (event loop) -------------------------------------------------------

    def on_audio(self, frame: Int16Array) -> None:
        """One received 20 ms frame (the stream reuses its buffer: keep a copy)."""
        frame = frame.copy()
        session = self._session
        if session is None or session.ending:
            self._ring.append(frame)
            return
        self._feed(session, frame)

    def _feed(self, session: _Session, frame: Int16Array) -> None:
        session.frames += 1
        session.last_frame_wall = self._loop.time()
        event = self.vad.process(frame)
        if not session.speaking:
            self._ring.append(frame)
            if isinstance(event, SpeechStart):
                session.speaking = True
                session.start_stamp = event.timestamp
                session.start_frame = session.frames - self.vad_config.start_frames + 1
                session.pending.extend(self._ring)  # pre-roll: the onset the VAD needed to trust
                session.speech_frames = len(self._ring)
                self._ring.clear()
                if self.on_speech_start is not None:
                    self.on_speech_start()
                self._pump(session)
            elif session.frames * FRAME_SECONDS >= session.spec.no_input_timeout:
                self._resolve(session, SpeechResult("noinput"))
            return
        session.pending.append(frame)
        session.speech_frames += 1
        flatness = spectral_flatness(frame)
        if flatness is not None:
            session.voiced_frames += 1
            session.noise_frames += flatness > NOISE_FLATNESS
        if isinstance(event, SpeechEnd):
            session.speech_ms = ((event.timestamp - session.start_stamp) & 0xFFFF_FFFF) / 8.0
            self._end_of_speech(session)
        elif session.speech_frames * FRAME_SECONDS >= session.spec.max_utterance:
            session.speech_ms = session.spec.max_utterance * 1000.0
            self._end_of_speech(session)
        elif len(session.pending) >= self._batch_frames(session):
            self._pump(session)

    def _batch_frames(self, session: _Session) -> int:
        # In the quiet after a word an early match is waiting for the partial to catch up with the
        # audio: decode every frame there (silence is cheap), in 100 ms batches elsewhere.
        if session.early is not None and self.vad.quiet_frames > 0:
            return 1
        return MIN_BATCH_FRAMES

    def _end_of_speech(self, session: _Session) -> None:
        session.ending = True
        session.ended_at = self._clock()
        self._pump(session)

    def _end_early(self, session: _Session) -> None:
        quiet = self.vad.quiet_frames
        session.speech_ms = max(0, session.frames - quiet - session.start_frame) * FRAME_SECONDS * 1000.0
        session.ended_early = True
        # The VAD is still inside the utterance; the next turn must start from "not speaking".
        self._restart_vad(self.vad.config.end_silence_ms)
        self._end_of_speech(session)

    # -- decoding jobs -------------------------------------------------------------------------

    def _created(self, session: _Session, future: asyncio.Future[StreamingRecognizer]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            if not session.future.done():
                session.future.set_exception(error)
            return
        session.recognizer = future.result()
        self._pump(session)

    def _pump(self, session: _Session) -> None:
        """Hand buffered audio to the pool, if the recognizer is free (one job per call)."""
        recognizer = session.recognizer
        if session.busy or recognizer is None or session.future.done():
            return
        if not session.pending and not session.ending:
            return
        chunks, session.pending = session.pending, []
        final = session.ending
        want_partial = not final and (
            session.spec.partials or self.on_partial is not None or session.early is not None
        )
        decoded = session.speech_frames  # every frame received so far is in this job
        session.busy = True
        job = self._loop.run_in_executor(self.executor, _decode, recognizer, chunks, final, want_partial)
        job.add_done_callback(lambda f: self._decoded(session, f, final, decoded))

    def _decoded(
        self,
        session: _Session,
        job: asyncio.Future[tuple[Recognition | None, str]],
        final: bool,
        decoded: int,
    ) -> None:
        session.busy = False
        if session.future.done() or job.cancelled():
            return
        error = job.exception()
        if error is not None:
            log.error("speech decoding failed", error=repr(error))
            session.future.set_exception(error)
            return
        recognition, partial = job.result()
        if partial and partial != self.partial:
            self.partial = partial
            if self.on_partial is not None:
                self.on_partial(partial)
        if final and recognition is not None:
            self._resolve(session, self._result(session, recognition))
            return
        early = session.early
        if early is not None and not session.ending:
            early.update(partial, decoded)
            if early.ready(decoded, session.speech_frames, self.vad.quiet_frames):
                self._end_early(session)
                return
        self._pump(session)

    def _result(self, session: _Session, recognition: Recognition) -> SpeechResult:
        spec = session.spec
        latency = None if session.ended_at is None else (self._clock() - session.ended_at) * 1000.0
        speech_ms = session.speech_ms
        base = SpeechResult(
            "nomatch",
            recognition.text,
            recognition.confidence,
            recognition.words,
            latency_ms=latency,
            speech_ms=speech_ms,
            early=session.ended_early,
        )
        if not recognition.matched:
            return base
        if session.noise_frames * 2 > max(session.voiced_frames, 1):
            # Mostly flat-spectrum sound: a grammar decoder maps any sound to some phrase, often
            # with full confidence, so noise must be caught before its "words" are believed.
            return base
        if spec.grammar is not None:
            label = spec.labels().get(recognition.phrase or "")
            return dataclasses.replace(base, kind="speech", intent=label, score=recognition.confidence)
        return dataclasses.replace(base, kind="speech", score=recognition.confidence)

    def _resolve(self, session: _Session, result: SpeechResult) -> None:
        if not session.future.done():
            session.future.set_result(result)
        self._close(session)  # now, not on the done callback: the next listen may start at once

    def _close(self, session: _Session) -> None:
        if self._session is session:
            self._session = None
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None

    # -- wall-clock watchdog (streams that stop sending) ---------------------------------------

    def _arm_watchdog(self) -> None:
        self._watchdog = self._loop.call_later(WATCHDOG_SECONDS, self._check)

    def _check(self) -> None:
        session = self._session
        if session is None or session.future.done():
            return
        now = self._loop.time()
        silent = now - session.last_frame_wall
        if session.speaking and not session.ending:
            if silent * 1000.0 >= self.vad.config.end_silence_ms:
                self._end_of_speech(session)
        elif (
            not session.speaking
            and now - session.started_wall >= session.spec.no_input_timeout + WATCHDOG_GRACE
        ):
            # Frames normally decide first (they count the same time); this only fires when they stopped.
            self._resolve(session, SpeechResult("noinput"))
            return
        self._arm_watchdog()


def _decode(
    recognizer: StreamingRecognizer, chunks: list[Int16Array], final: bool, want_partial: bool
) -> tuple[Recognition | None, str]:
    """Worker thread: feed the batch; on the final one, end the utterance and judge it."""
    if chunks:
        recognizer.accept(np.concatenate(chunks))
    if final:
        return recognizer.finish(), ""
    return None, recognizer.partial() if want_partial else ""
