"""The fast path to a human and the callback promise, over real calls.

Three jobs, on calls placed through a ``Dialer`` and timed by a ``Clock`` (``ivr.handoff.ports``),
each in its own module over the state they share (``desk``):

- ``transfer`` (``live_transfer``): ring a free agent, whisper, bridge; or hold the caller in the
  one line with honest estimates, or let them choose a callback.
- ``offer_callback`` (``callback_booking``): confirm the number, choose a window, book it durably.
- ``run_dialer`` (``callback_dialer``): keeps the promises, agent first.
"""

from __future__ import annotations

from ivr.handoff.callback_booking import CallbackBooking
from ivr.handoff.callback_dialer import CallbackDialer
from ivr.handoff.desk import HandoffConfig, context_headers, hold_music, summary_text
from ivr.handoff.live_transfer import LiveTransfer


class Handoff(LiveTransfer, CallbackBooking, CallbackDialer):
    """The three jobs on one shared desk: one per server process."""


__all__ = ["Handoff", "HandoffConfig", "context_headers", "hold_music", "summary_text"]
