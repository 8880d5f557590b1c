"""A stream listener for tests: it keeps what the stream tells it."""

from __future__ import annotations

from ivr.media.stream import MediaEvent, MediaStream


class Recorder:
    def __init__(self) -> None:
        self.frames: list[bytes | None] = []  # one per tick: the payload played out, or None
        self.events: list[MediaEvent] = []

    def on_frame(self, stream: MediaStream, payload: bytes | None) -> None:
        self.frames.append(payload)

    def on_events(self, stream: MediaStream, events: list[MediaEvent]) -> None:
        self.events += events


def recorded(stream: MediaStream) -> Recorder:
    """A recorder set as ``stream``'s listener."""
    recorder = Recorder()
    stream.listener = recorder
    return recorder
