"""pyVoIP 1.6.8 as a softphone registered at the Kamailio harness.

    with kamailio_proxy() as kam, PyVoipPeer(kam.host, kam.port, "alice", "alice") as alice:
        assert alice.registered
        result = alice.call("ivr", hold_s=5)        # INVITE sip:ivr@<kamailio> through the proxy
        result.answered, result.duration, result.ended_by_remote
        alice.answered_calls                        # incoming calls it answered (answer_incoming=True)

pyVoIP sends every request and response to its registrar (it cannot work without one), so this
peer only works through Kamailio.  pyVoIP imports `audioop`, which Python 3.13 removed: there
`PyVoipPeer` raises `PyVoipUnavailable` saying so (install `audioop-lts` to bring it back).
pyVoIP runs threads of its own; they are stopped with `stop()` (deregisters and closes sockets).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
import warnings
from dataclasses import dataclass, field
from types import ModuleType, TracebackType
from typing import Any

from tests.sipp_runner import LOCALHOST, find_free_udp_port

PYVOIP_VERSION = "1.6.8"


class PyVoipUnavailable(RuntimeError):
    """pyVoIP cannot be imported here (not installed, or `audioop` is missing)."""


def load_pyvoip() -> tuple[ModuleType, ModuleType]:
    """(pyVoIP, pyVoIP.VoIP), imported with its DeprecationWarnings (audioop) silenced."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            package = importlib.import_module("pyVoIP")
            voip = importlib.import_module("pyVoIP.VoIP")
    except ModuleNotFoundError as exc:
        if exc.name == "audioop":
            raise PyVoipUnavailable(
                "pyVoIP imports the 'audioop' module, which this Python no longer has (removed in 3.13); "
                "use Python 3.11/3.12 or pip install audioop-lts"
            ) from exc
        raise PyVoipUnavailable(f"pyVoIP is not installed ({exc}); pip install -e '.[test]'") from exc
    version = getattr(package, "__version__", "?")
    if version != PYVOIP_VERSION:
        raise PyVoipUnavailable(f"pyVoIP {version} found, the harness is written for {PYVOIP_VERSION}")
    return package, voip


@dataclass
class PeerCall:
    answered: bool
    duration: float | None  # seconds from answer to the end of the call
    final_state: str  # pyVoIP CallState name at the end (ENDED when all went well)
    ended_by_remote: bool  # the other side hung up before we did


@dataclass
class PyVoipPeer:
    server: str
    server_port: int
    username: str
    password: str
    answer_incoming: bool = True
    host: str = LOCALHOST
    sip_port: int = 0  # 0: a free port
    answered_calls: list[Any] = field(default_factory=list)
    _phone: Any = None

    def __post_init__(self) -> None:
        self._package, self._voip = load_pyvoip()
        self.sip_port = self.sip_port or find_free_udp_port(self.host)
        rtp = find_free_udp_port(self.host, span=20)
        self._lock = threading.Lock()
        self._phone = self._voip.VoIPPhone(
            self.server,
            self.server_port,
            self.username,
            self.password,
            myIP=self.host,
            callCallback=self._on_incoming,
            sipPort=self.sip_port,
            rtpPortLow=rtp,
            rtpPortHigh=rtp + 19,
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 10) -> bool:
        """Register (pyVoIP does it in start()); True once the registrar said 200."""
        self._phone.start()
        deadline = time.monotonic() + timeout
        while not self.registered and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.registered

    @property
    def registered(self) -> bool:
        return str(self._phone.get_status().name) == "REGISTERED"

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # pyVoIP raises from half-closed sockets on shutdown
            self._phone.stop()

    def __enter__(self) -> PyVoipPeer:
        if not self.start():
            self.stop()
            raise RuntimeError(f"pyVoIP {self.username} did not register at {self.server}:{self.server_port}")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- calls -------------------------------------------------------------------------------
    def _on_incoming(self, call: Any) -> None:
        # Runs on pyVoIP's receive thread.
        if not self.answer_incoming:
            call.deny()
            return
        call.answer()
        with self._lock:
            self.answered_calls.append(call)

    def call(self, number: str, *, hold_s: float = 3.0, answer_timeout: float = 10.0) -> PeerCall:
        """Call `number` through the registrar; hang up after `hold_s` s of conversation unless
        the other side does first."""
        state = self._voip.CallState
        call = self._phone.call(number)
        deadline = time.monotonic() + answer_timeout
        while call.state in (state.DIALING, state.RINGING) and time.monotonic() < deadline:
            time.sleep(0.02)
        if call.state != state.ANSWERED:
            with contextlib.suppress(Exception):
                call.hangup()
            return PeerCall(answered=False, duration=None, final_state=call.state.name, ended_by_remote=False)
        answered_at = time.monotonic()
        end = answered_at + hold_s
        while call.state == state.ANSWERED and time.monotonic() < end:
            time.sleep(0.02)
        ended_by_remote = call.state == state.ENDED
        if not ended_by_remote:
            call.hangup()
        return PeerCall(
            answered=True,
            duration=time.monotonic() - answered_at,
            final_state=call.state.name,
            ended_by_remote=ended_by_remote,
        )
