"""The per-packet glue of one call: its RTP socket, its ``MediaStream`` and its ``Call``.

The RTP poller hands each datagram straight to the stream, and the media clock calls ``tick``
once a frame; both run 50 times a second per call, so this is a class of its own, compiled with
the media plane (setup.py), rather than closures inside the engine.

The leg is its stream's one listener: it hands the call its key presses, and every frame and key
press to those who subscribed to the call (``Call.subscribe``). It alone sets the stream's
listener and the socket's handler.

No reference cycle is left behind: the socket's handler holds the stream, whose listener (this
object) holds the socket and the call, which holds the stream. When the engine releases the leg,
``close`` unsets the listener and the socket's own ``close`` its handler.
"""

from __future__ import annotations

from ivr.call.call import Call
from ivr.media.stream import MediaEvent, MediaStream
from ivr.net.rtp_transport import RtpSocket


class RtpLeg:
    def __init__(self, media: MediaStream, rtp: RtpSocket, call: Call) -> None:
        self.media = media
        self.rtp = rtp
        self.call = call
        media.listener = self
        rtp.on_datagram = media.receive

    def close(self) -> None:
        self.media.listener = None

    def tick(self, now: float) -> None:
        media = self.media
        packet = media.tick(now)
        if packet is not None:
            target = media.send_address
            if target is not None:
                self.rtp.sendto(packet, target)

    # -- the stream's listener -------------------------------------------------------------------

    def on_frame(self, stream: MediaStream, payload: bytes | None) -> None:
        for listener in self.call.media_listeners:
            listener.on_frame(stream, payload)

    def on_events(self, stream: MediaStream, events: list[MediaEvent]) -> None:
        for listener in self.call.media_listeners:
            listener.on_events(stream, events)
        self.call.on_media_events(events)
