"""SourceLatch: which address a call's RTP is taken from, and so where it is sent.

Symmetric RTP (RFC 4961): the first packet taken latches its source address, which is also where
the call's packets go; a caller behind NAT is reached at the address its packets come from, not at
the private one its SDP names.  Packets from anywhere else are held back (the stream drops and
counts them), unless

- the latched source has been silent for ``timeout`` seconds: NAT rebinding, or media moved
  without a re-INVITE, so the new source takes over;
- they come from the address the SDP gave, which always takes the latch back from a stranger that
  got there first (otherwise a stranger spraying our ports before the caller's first packet keeps
  the call's audio and keys for as long as it goes on sending: RTP bleed).

Before anything is latched, a source other than the SDP's waits ``foreign_grace`` seconds: it may
be the caller behind NAT, or a stranger racing the caller's first packet.  Meanwhile the caller's
prompt waits too (`can_send`): sent to the SDP's private address, a NAT'd caller would never hear
its first words.

Plain values in, a verdict out: the caller passes the packet's source and the time; nothing here
reads a clock.  This runs for every packet received, so the usual case (from the latched source)
is one tuple comparison.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ACCEPTED", "HELD_BACK", "RELATCHED", "Address", "SourceLatch"]

Address = tuple[str, int]

# What `SourceLatch.accept` says of a packet (plain ints: compared once per packet received).
ACCEPTED: Final = 0  # from the latched source, or it latched just now
HELD_BACK: Final = 1  # from a source not taken (yet): drop it
RELATCHED: Final = 2  # its source took the latch over from the one before

# A NAT'd caller's prompt waits a little longer than its source does, so that the latch (taken on
# the caller's next packet after the grace) comes before the prompt's first frame goes out.
PROBATION_SLACK = 0.1


class SourceLatch:
    """The symmetric-RTP latch of one stream, with the anti-bleed rules above."""

    def __init__(
        self, remote: Address | None = None, *, timeout: float = 2.0, foreign_grace: float = 0.5
    ) -> None:
        self.remote = remote  # where the SDP said the far end sends from and listens
        self.timeout = timeout
        self.foreign_grace = foreign_grace
        self.latched: Address | None = None
        self._last_rx = 0.0  # when the latched source last sent
        self._foreign_since: float | None = None  # first packet from elsewhere while unlatched

    @property
    def send_address(self) -> Address | None:
        """The latched source (symmetric RTP), else the SDP's address, else nowhere."""
        return self.latched if self.latched is not None else self.remote

    def move(self, remote: Address | None) -> None:
        """A (re-)negotiated SDP address: if the media moved, latch afresh to whoever now sends."""
        if remote != self.remote:
            self.remote = remote
            self.latched = None

    def accept(self, addr: Address, now: float) -> int:
        """Whether a packet from ``addr`` received at ``now`` is taken: ACCEPTED, HELD_BACK or
        RELATCHED."""
        latched = self.latched
        if latched is None:
            remote = self.remote
            if remote is not None and (addr[0] != remote[0] or addr[1] != remote[1]):
                # Not from where the signalling said: a caller behind NAT, or a stranger spraying
                # our ports before the caller's first packet. Give the signalled address a moment;
                # only if it stays silent does this source latch.
                if self._foreign_since is None:
                    self._foreign_since = now
                if now - self._foreign_since < self.foreign_grace:
                    return HELD_BACK
            self.latched = (addr[0], addr[1])
            self._last_rx = now
            return ACCEPTED
        if addr[0] == latched[0] and addr[1] == latched[1]:
            self._last_rx = now
            return ACCEPTED
        remote = self.remote
        signalled = remote is not None and addr[0] == remote[0] and addr[1] == remote[1]
        if not signalled and now - self._last_rx <= self.timeout:
            return HELD_BACK
        self.latched = (addr[0], addr[1])
        self._last_rx = now
        return RELATCHED

    def can_send(self, now: float) -> bool:
        """Whether there is somewhere to send at ``now``: a latched source, or the SDP's address
        unless a foreign source is on probation (most likely a NAT'd caller, see above)."""
        if self.latched is not None:
            return True  # a call in progress: the usual case, tested first
        if self.remote is None:
            return False
        since = self._foreign_since
        return since is None or now - since >= self.foreign_grace + PROBATION_SLACK
