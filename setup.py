"""Build step: the media plane's per-packet modules, compiled with mypyc.

Every call receives and sends 50 packets a second, and the code that handles each one (the RTP
poller, the media clock, ``MediaStream`` with its jitter buffer, RFC 4733 receiver and prompt
player) is most of the server's CPU under real callers. mypyc compiles these same, fully typed
modules to C extensions; nothing is rewritten, so the Python source stays the reference and runs
wherever the extensions are absent, stale, or switched off with ``IVR_PURE_PYTHON=1``
(``ivr/_compiled.py``). Set ``IVR_PURE_PYTHON=1`` at install time to build nothing.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

# Keep in step with ivr/_compiled.py: COMPILED.
HOT_MODULES = [
    "ivr/media/rtp.py",
    "ivr/media/g711.py",
    "ivr/media/goertzel.py",
    "ivr/media/dtmf.py",
    "ivr/media/jitter.py",
    "ivr/media/player.py",
    "ivr/media/source_latch.py",
    "ivr/media/stream.py",
    "ivr/net/rtp_transport.py",
    "ivr/net/media_clock.py",
    "ivr/call/rtp_leg.py",
]


def ext_modules() -> list[object]:
    if os.environ.get("IVR_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("setup.py: mypyc is not installed; the media plane runs as pure Python", file=sys.stderr)
        return []
    return list(mypycify(HOT_MODULES, opt_level="3", group_name="ivr_media"))


setup(ext_modules=ext_modules())
