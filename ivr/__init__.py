"""A callback-first IVR on plain SIP/RTP."""

from ivr import _compiled

# The media plane's compiled modules, or their sources where those must run (see _compiled).
_compiled.install()
