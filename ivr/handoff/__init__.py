"""The human fast path and callback promises: agents, the virtual queue, honest wait estimates,
promises within business hours, callback numbers that cannot be abused, and the callback scheduler.

Everything here is pure: no sockets, no clocks (``now`` is passed in, UNIX seconds or an aware
datetime). The SIP layer drives it; the durable state lives in ``ivr.store``.
"""
