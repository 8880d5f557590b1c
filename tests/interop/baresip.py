"""baresip 1.0 as a headless caller for interop tests.

    result = baresip_call("sip:ivr@127.0.0.1:5080", workdir=tmp_path, digits="12#", hold_s=6)
    result.established, result.duration, result.recording  # WAV of what it heard

or, step by step:

    with Baresip(workdir=tmp_path, audio=Path("hello.wav")) as phone:
        phone.dial("sip:ivr@127.0.0.1:5080")
        phone.wait_for("CALL_ESTABLISHED", timeout=10)
        phone.send_digits("42")          # RFC 4733 (baresip offers telephone-event/8000 as 101)
        phone.hangup()
        phone.wait_for("CALL_CLOSED", timeout=5)

The generated configuration: no sound card (audio source = a WAV via `aufile`, player = an
`aubridge` device nobody reads), G.711 only, SIP on 127.0.0.1:<free port> and RTP on loopback
(`net_interface 127.0.0.1`), the `sndfile` filter writing what is sent (-enc.wav) and heard (-dec.wav)
to `workdir/rec`, and `ctrl_tcp` on 127.0.0.1:<free port> for commands and events (JSON in
netstrings).  The call ends by itself when the WAV runs out (baresip's aufile behaviour), so
`audio`'s length bounds the call.  baresip runs with `-t` as a backstop and is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sysconfig
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.sipp_runner import LOCALHOST, find_free_udp_port


def baresip_binary() -> str:
    path = shutil.which("baresip")
    if path is None:
        raise FileNotFoundError("baresip not found: install the Debian package baresip (bash run.sh does)")
    return path


def module_path() -> Path:
    """Where the distribution keeps baresip's modules (g711.so and friends)."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    candidates = [
        Path("/usr/lib/baresip/modules"),
        Path("/usr/lib") / multiarch / "baresip/modules",
        Path("/usr/local/lib/baresip/modules"),
    ]
    for candidate in candidates:
        if (candidate / "g711.so").exists():
            return candidate
    raise FileNotFoundError(f"baresip modules not found in {[str(c) for c in candidates]}")


def write_silence(path: Path, seconds: float, rate: int = 8000) -> Path:
    """A mono 16-bit WAV of silence (the default audio source)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return path


def wav_duration(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / float(wav.getframerate())


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class Baresip:
    """One headless baresip process with one local account (sip:caller@127.0.0.1, no REGISTER)."""

    def __init__(
        self,
        workdir: Path,
        *,
        audio: Path | None = None,
        user: str = "caller",
        max_seconds: float = 60,
    ) -> None:
        self.workdir = workdir
        self.config_dir = workdir / "baresip"
        self.record_dir = workdir / "rec"
        self.user = user
        self.max_seconds = max_seconds
        self.audio = audio
        self.sip_port = find_free_udp_port(also_tcp=True)
        self.ctrl_port = find_free_udp_port(also_tcp=True)
        rtp = find_free_udp_port(span=20)
        self.rtp_ports = (rtp, rtp + 19)
        self.events: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._token = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def write_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.record_dir.mkdir(parents=True, exist_ok=True)
        if self.audio is None:
            self.audio = write_silence(self.workdir / "silence.wav", self.max_seconds)
        lines = {
            "poll_method": "epoll",
            "sip_listen": f"{LOCALHOST}:{self.sip_port}",
            "net_interface": LOCALHOST,
            "audio_player": "aubridge,nil",
            "audio_alert": "aubridge,nil",
            "audio_source": f"aufile,{self.audio}",
            "ausrc_srate": "8000",
            "auplay_srate": "8000",
            "rtp_ports": f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            "module_path": str(module_path()),
            "ctrl_tcp_listen": f"{LOCALHOST}:{self.ctrl_port}",
            "snd_path": str(self.record_dir),
        }
        text = "".join(f"{key}\t\t{value}\n" for key, value in lines.items())
        text += "".join(
            f"module\t\t{name}\n" for name in ("g711.so", "aufile.so", "aubridge.so", "sndfile.so")
        )
        text += "".join(f"module_app\t\t{name}\n" for name in ("account.so", "menu.so", "ctrl_tcp.so"))
        (self.config_dir / "config").write_text(text)
        (self.config_dir / "accounts").write_text(f"<sip:{self.user}@{LOCALHOST}>;regint=0\n")
        (self.config_dir / "contacts").write_text("")

    def start(self, startup_timeout: float = 10) -> None:
        self.write_config()
        log = open(self.workdir / "baresip.log", "wb")
        args = [baresip_binary(), "-f", str(self.config_dir), "-t", str(int(self.max_seconds) + 5)]
        self.process = subprocess.Popen(
            args, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + startup_timeout
        while self._sock is None:
            try:
                self._sock = socket.create_connection((LOCALHOST, self.ctrl_port), timeout=0.5)
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"baresip did not start (rc={self.process.poll()}):\n{self.log()}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> int | None:
        """Stop baresip (our process only, by PID) and return its exit code."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        if self.process is None:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        return self.process.returncode

    def __enter__(self) -> Baresip:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- control -----------------------------------------------------------------------------
    def command(self, name: str, params: str = "", timeout: float = 5) -> dict[str, Any]:
        """Run a baresip command (as typed after '/') and return its response."""
        assert self._sock is not None, "baresip is not running"
        self._token += 1
        token = f"t{self._token}"
        self._sock.sendall(
            _netstring(json.dumps({"command": name, "params": params, "token": token}).encode())
        )
        deadline = time.monotonic() + timeout
        while True:
            for response in self.responses:
                if response.get("token") == token:
                    self.responses.remove(response)
                    return response
            if not self._read(deadline):
                raise TimeoutError(f"no response to {name!r} from baresip")

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def send_digits(self, digits: str) -> None:
        """RFC 4733 DTMF, one event per character (0-9 * # A-D)."""
        self.command("sndcode", digits)

    def hangup(self) -> None:
        self.command("hangup")

    def wait_for(self, event_type: str, timeout: float = 10) -> dict[str, Any] | None:
        """The first event of that type (CALL_RINGING, CALL_ESTABLISHED, CALL_CLOSED, ...), or None."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("type") == event_type:
                    return event
            seen = len(self.events)
            if not self._read(deadline):
                return None

    def event_time(self, event_type: str) -> float | None:
        for event in self.events:
            if event.get("type") == event_type:
                return float(event["_at"])
        return None

    def _read(self, deadline: float) -> bool:
        """Read what is there until deadline; False when nothing more came by then."""
        assert self._sock is not None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self._sock.settimeout(remaining)
        try:
            data = self._sock.recv(65536)
        except TimeoutError:
            return False
        if not data:
            return False
        self._buffer += data
        while b":" in self._buffer:
            length_text, rest = self._buffer.split(b":", 1)
            length = int(length_text)
            if len(rest) < length + 1:
                break
            message = json.loads(rest[:length])
            self._buffer = rest[length + 1 :]
            message["_at"] = time.monotonic()
            (self.events if message.get("event") else self.responses).append(message)
        return True

    # -- results -----------------------------------------------------------------------------
    def log(self) -> str:
        path = self.workdir / "baresip.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def recording(self) -> Path | None:
        """The WAV of what baresip heard in its last call (sndfile's -dec dump)."""
        files = sorted(self.record_dir.glob("*-dec.wav"))
        return files[-1] if files else None


@dataclass
class BaresipCall:
    established: bool
    closed: bool
    duration: float | None  # seconds from CALL_ESTABLISHED to CALL_CLOSED
    close_reason: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    recording: Path | None = None  # what it heard: 8 kHz 16-bit mono WAV
    log: str = ""
    returncode: int | None = None


def baresip_call(
    target: str,
    *,
    workdir: Path,
    audio: Path | None = None,
    hold_s: float = 5.0,
    digits: str | None = None,
    digits_after_s: float = 1.0,
    answer_timeout: float = 15.0,
) -> BaresipCall:
    """Dial `target`, send `digits` (if any) `digits_after_s` after the answer, and hang up after
    `hold_s` seconds of call unless the other side hangs up first.  `audio` (a WAV) is what the
    caller says; silence by default."""
    phone = Baresip(workdir, audio=audio, max_seconds=hold_s + answer_timeout + 10)
    with phone:
        phone.dial(target)
        established = phone.wait_for("CALL_ESTABLISHED", timeout=answer_timeout)
        closed = None
        if established is not None:
            if digits:
                closed = phone.wait_for("CALL_CLOSED", timeout=digits_after_s)
                if closed is None:
                    phone.send_digits(digits)
            if closed is None:
                closed = phone.wait_for("CALL_CLOSED", timeout=hold_s - (digits_after_s if digits else 0))
            if closed is None:
                phone.hangup()
                closed = phone.wait_for("CALL_CLOSED", timeout=5)
        else:
            closed = phone.wait_for("CALL_CLOSED", timeout=1)
    duration = None
    if established is not None and closed is not None:
        duration = float(closed["_at"]) - float(established["_at"])
    return BaresipCall(
        established=established is not None,
        closed=closed is not None,
        duration=duration,
        close_reason=None if closed is None else str(closed.get("param")),
        events=list(phone.events),
        recording=phone.recording(),
        log=phone.log(),
        returncode=phone.process.returncode if phone.process else None,
    )


def rms(path: Path) -> float:
    """Root mean square of a 16-bit mono WAV (0 = silence), to tell "heard something" apart."""
    with wave.open(str(path), "rb") as wav:
        frames = wav.readframes(wav.getnframes())
    count = len(frames) // 2
    if count == 0:
        return 0.0
    samples = struct.unpack(f"<{count}h", frames[: count * 2])
    return float((sum(s * s for s in samples) / count) ** 0.5)
