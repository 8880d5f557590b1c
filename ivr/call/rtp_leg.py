"""The per-packet glue of one call: its RTP socket, its ``MediaStream`` and its ``Call``.

The RTP poller hands each datagram to ``on_datagram`` and the media clock calls ``tick`` once a
frame; both run 50 times a second per call, so they are a class of their own, compiled with the
media plane (setup.py), rather than closures inside the engine.

No reference cycle is left behind: the socket holds ``on_datagram`` (and through it this object,
which holds the socket), and the engine's release of the leg resets that handler first.
"""

from __future__ import annotations

from ivr.call.call import Call
from ivr.media.stream import MediaStream
from ivr.net.rtp_transport import Address, RtpSocket


class RtpLeg:
    def __init__(self, media: MediaStream, rtp: RtpSocket, call: Call) -> None:
        self.media = media
        self.rtp = rtp
        self.call = call

    def on_datagram(self, data: bytes, addr: Address, now: float) -> None:
        events = self.media.receive(data, addr, now)
        if events:
            self.call.on_media_events(events)

    def tick(self, now: float) -> None:
        media = self.media
        packet = media.tick(now)
        if packet is not None:
            target = media.send_address
            if target is not None:
                self.rtp.sendto(packet, target)
        events = media.pop_events()
        if events:
            self.call.on_media_events(events)
