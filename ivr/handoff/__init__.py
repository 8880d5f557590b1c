"""The human fast path and callback promises: agents, the virtual queue, honest wait estimates,
promises within business hours, callback numbers that cannot be abused, and the callback scheduler.

The cores are pure: no sockets, no clocks (``now`` is passed in, UNIX seconds or an aware
datetime). The service over them (``service``: live transfer, booking, callback dialer) gets what
it needs through small protocols (``ports``: a clock, a voice, a dialer, call legs) and the store's
(``ivr.store.base``); the application layer passes in adapters over the call engine.
"""
