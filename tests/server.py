"""Start ``ivr serve`` as a real process on 127.0.0.1 for the tests that call it over sockets."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    address: tuple[str, int]
    log_path: Path

    def log_lines(self) -> list[dict[str, object]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                lines.append(json.loads(raw))
        return lines

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


def answers_options(address: tuple[str, int], timeout: float = 0.2) -> bool:
    """Readiness: the server answers an OPTIONS request (RFC 3261 §11)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        port = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:ivr@{address[0]}:{address[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKready{time.monotonic_ns()}\r\n"
            f"From: <sip:probe@127.0.0.1:{port}>;tag=ready\r\nTo: <sip:ivr@{address[0]}>\r\n"
            f"Call-ID: ready-{time.monotonic_ns()}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), address)
        try:
            return sock.recv(4096).startswith(b"SIP/2.0 200")
        except OSError:
            return False


@contextlib.contextmanager
def ivr_server(tmp_path: Path, *extra: str, rtp_base: int = 30000) -> Iterator[RunningServer]:
    server = _start(tmp_path, extra, rtp_base)
    try:
        yield server
    finally:
        _stop(server.process)


def _start(tmp_path: Path, extra: tuple[str, ...], rtp_base: int, attempts: int = 3) -> RunningServer:
    """Start ``ivr serve`` and wait until it answers OPTIONS. The SIP port is picked free, but the
    server binds it only after loading flows and models (seconds on a busy machine, with a Vosk
    model): if another process took it meanwhile, start again on another port."""
    for attempt in range(attempts):
        port = free_udp_port()
        log_path = tmp_path / f"ivr-{port}.log"
        cmd = [
            sys.executable, "-m", "ivr", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--rtp-ports", f"{rtp_base}-{rtp_base + 1998}", "--log-format", "json",
            "--cache-dir", str(REPO / "audio" / "cache"), "--drain-timeout", "2", *extra,
        ]  # fmt: skip
        if "--db" not in extra:
            cmd += ["--db", str(tmp_path / f"ivr-{port}.db")]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=os.environ.copy()
            )
        server = RunningServer(process, ("127.0.0.1", port), log_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = log_path.read_text()
                if "Address already in use" in output and attempt + 1 < attempts:
                    break
                raise RuntimeError(f"ivr serve exited with {process.returncode}: {output}")
            workers = _workers(extra)
            # Each worker logs "listening" at info level; with a quieter --log-level only the
            # first worker's answer can be waited for.
            quiet = "--log-level" in extra
            if answers_options(server.address) and (
                workers == 1 or quiet or _workers_listening(log_path) >= workers
            ):
                return server
            time.sleep(0.05)
        else:
            _stop(process)
            raise RuntimeError(f"ivr serve did not start: {log_path.read_text()}")
    raise AssertionError("unreachable: the last attempt returns or raises")


def _workers(extra: tuple[str, ...]) -> int:
    """How many worker processes ``extra`` asks for (0 means one per core)."""
    if "--workers" not in extra:
        return 1
    count = int(extra[extra.index("--workers") + 1])
    return count or (os.cpu_count() or 1)


def _workers_listening(log_path: Path) -> int:
    """Workers that have bound the SIP port: one answering OPTIONS says nothing of the others,
    and a call meant for a worker still starting is taken by another one instead."""
    return log_path.read_text(errors="replace").count('"event": "listening"')


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
