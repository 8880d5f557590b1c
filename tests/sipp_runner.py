"""Run SIPp from tests: bounded in time, on 127.0.0.1, results parsed.

Not a test module.  Typical use::

    from tests.sipp_runner import SIPP_DIR, find_free_udp_port, run_sipp, start_sipp

    result = run_sipp(SIPP_DIR / "uac_basic.xml", f"127.0.0.1:{port}", sets={"digits": "42"})
    assert result.ok, result.describe()

    uas = start_sipp("uas", None, calls=1)          # SIPp's built-in UAS, in the background
    uac = run_sipp(SIPP_DIR / "uac_basic.xml", uas.address)
    assert uas.wait().ok

SIPp runs in its own temporary directory with ``-trace_err -trace_stat -stf -error_file`` and a
``-timeout``/``-timeout_error`` guard a few seconds inside the hard timeout of the subprocess.  If
the hard timeout passes anyway, only the process started here is killed, by its PID.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SIPP_DIR = REPO_ROOT / "sipp"
LOCALHOST = "127.0.0.1"

# SIPp's own margin: its -timeout fires this many seconds before we kill it.
_SIPP_TIMEOUT_MARGIN = 5.0


def sipp_binary() -> str:
    """Path of the sipp executable (Debian package sip-tester); raises if it is missing."""
    path = shutil.which("sipp")
    if path is None:
        raise FileNotFoundError("sipp not found: install the Debian package sip-tester (bash run.sh does)")
    return path


def _ports_free(host: str, first: int, count: int, kind: int) -> bool:
    sockets: list[socket.socket] = []
    try:
        for port in range(first, first + count):
            sock = socket.socket(socket.AF_INET, kind)
            sockets.append(sock)
            sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def find_free_udp_port(host: str = LOCALHOST, *, span: int = 1, also_tcp: bool = False) -> int:
    """A port P such that P .. P+span-1 are free for UDP (and TCP when also_tcp) on host.

    span > 1 gives an even P, as RTP wants (RTP on P, RTCP on P+1).  Like every free-port finder
    this is a hint, not a reservation: bind soon.
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if span > 1:
            port -= port % 2
        if port + span > 65535:
            continue
        if not _ports_free(host, port, span, socket.SOCK_DGRAM):
            continue
        if also_tcp and not _ports_free(host, port, span, socket.SOCK_STREAM):
            continue
        return port
    raise RuntimeError(f"no free UDP port range of {span} on {host}")


def wait_udp_bound(host: str, port: int, timeout: float = 5.0) -> bool:
    """True once something is bound to UDP host:port (we can no longer bind it ourselves)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
                raise
        time.sleep(0.02)
    return False


@dataclass
class SippResult:
    returncode: int
    successful: int
    failed: int
    stdout: str
    stderr: str
    stats: dict[str, str] = field(default_factory=dict)  # last row of the -trace_stat CSV
    errors: str = ""  # the -error_file text
    timed_out: bool = False  # we had to kill it

    @property
    def ok(self) -> bool:
        """Every call succeeded and there was at least one."""
        return self.returncode == 0 and self.failed == 0 and self.successful > 0 and not self.timed_out

    def describe(self) -> str:
        """A compact text for assertion messages."""
        return (
            f"sipp rc={self.returncode} successful={self.successful} failed={self.failed} "
            f"timed_out={self.timed_out}\n--- errors ---\n{self.errors[-3000:]}\n"
            f"--- stderr ---\n{self.stderr[-2000:]}\n--- stdout (tail) ---\n{self.stdout[-2000:]}"
        )


def parse_stat_csv(text: str) -> dict[str, str]:
    """The last data row of a SIPp -trace_stat file as {column: value}."""
    rows = [row for row in csv.reader(text.splitlines(), delimiter=";") if row]
    if len(rows) < 2:
        return {}
    header, last = rows[0], rows[-1]
    return {name: value for name, value in zip(header, last, strict=False) if name}


_SCREEN_COUNT = re.compile(r"^\s*(Successful|Failed) call\s*\|\s*\d+\s*\|\s*(\d+)", re.MULTILINE)


def parse_screen_counts(stdout: str) -> tuple[int, int] | None:
    """(successful, failed) from the last statistics screen SIPp printed, if any."""
    counts: dict[str, int] = {}
    for match in _SCREEN_COUNT.finditer(stdout):
        counts[match.group(1)] = int(match.group(2))
    if not counts:
        return None
    return counts.get("Successful", 0), counts.get("Failed", 0)


class SippProcess:
    """One SIPp started by start_sipp(); call wait() (or use it as a context manager)."""

    def __init__(
        self,
        args: list[str],
        workdir: Path,
        *,
        timeout: float,
        cleanup: bool,
        address: str,
    ) -> None:
        self.args = args
        self.workdir = workdir
        self.address = address  # host:port SIPp listens on
        self._cleanup = cleanup
        self._deadline = time.monotonic() + timeout
        self._stdout = open(workdir / "stdout.txt", "wb")
        self._stderr = open(workdir / "stderr.txt", "wb")
        self.process = subprocess.Popen(
            args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr
        )
        self.result: SippResult | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to exit (at most until its hard deadline, or `timeout` seconds)."""
        if self.result is not None:
            return self.result
        remaining = max(0.0, self._deadline - time.monotonic())
        if timeout is not None:
            remaining = min(remaining, timeout)
        timed_out = False
        try:
            self.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            timed_out = True
            self._kill()
        self.result = self._collect(timed_out)
        return self.result

    def stop(self) -> SippResult:
        """End a SIPp that would otherwise keep waiting (e.g. a UAS): SIGTERM, then SIGKILL."""
        if self.result is None and self.process.poll() is None:
            self._kill()
        return self.wait(timeout=0)

    def _kill(self) -> None:
        # Only the process we started, by its PID.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def _collect(self, timed_out: bool) -> SippResult:
        self._stdout.close()
        self._stderr.close()

        def read(name: str) -> str:
            path = self.workdir / name
            return path.read_text(errors="replace") if path.exists() else ""

        stdout, stderr = read("stdout.txt"), read("stderr.txt")
        stats = parse_stat_csv(read("stat.csv"))
        errors = read("errors.log")
        successful = failed = 0
        if "SuccessfulCall(C)" in stats:
            successful = int(stats.get("SuccessfulCall(C)") or 0)
            failed = int(stats.get("FailedCall(C)") or 0)
        else:
            counts = parse_screen_counts(stdout)
            if counts is not None:
                successful, failed = counts
        result = SippResult(
            returncode=self.process.returncode,
            successful=successful,
            failed=failed,
            stdout=stdout,
            stderr=stderr,
            stats=stats,
            errors=errors,
            timed_out=timed_out,
        )
        if self._cleanup:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return result

    def __enter__(self) -> SippProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _scenario_args(scenario: str | os.PathLike[str]) -> list[str]:
    text = os.fspath(scenario)
    if text.endswith(".xml"):
        path = Path(text)
        if not path.is_absolute():
            path = SIPP_DIR / path if (SIPP_DIR / path).exists() else path.resolve()
        if not path.exists():
            raise FileNotFoundError(path)
        return ["-sf", str(path)]
    return ["-sn", text]  # a built-in scenario: uac, uas, regexp, ...


def start_sipp(
    scenario: str | os.PathLike[str],
    target: str | None,
    *,
    calls: int = 1,
    rate: float | None = None,
    limit: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 60,
    host: str = LOCALHOST,
    local_port: int | None = None,
    media_port: int | None = None,
    service: str | None = None,
    sets: Mapping[str, str | int] | None = None,
    keys: Mapping[str, str | int] | None = None,
    transport: str = "u1",
    workdir: Path | None = None,
) -> SippProcess:
    """Start SIPp without waiting.  `scenario`: a path to an XML file (relative ones are looked up in
    sipp/) or a built-in name such as "uas".  `target`: "host:port" for a UAC, None for a UAS.
    `calls` is -m (SIPp exits after that many calls), `rate` -r (calls/s), `limit` -l (concurrent).
    `sets` become -set NAME VALUE (scenario globals), `keys` -key NAME VALUE.  Files are kept in
    `workdir` when given, else in a temporary directory removed after wait()."""
    cleanup = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="sipp-")) if workdir is None else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    local_port = local_port or find_free_udp_port(host)
    media_port = media_port or find_free_udp_port(host, span=4)
    sipp_timeout = max(1, int(timeout - _SIPP_TIMEOUT_MARGIN))
    args = [
        sipp_binary(),
        *_scenario_args(scenario),
        "-i", host,
        "-p", str(local_port),
        "-mi", host,
        "-mp", str(media_port),
        "-t", transport,
        "-m", str(calls),
        "-nostdin",
        "-trace_err",
        "-error_file", str(workdir / "errors.log"),
        "-trace_stat",
        "-stf", str(workdir / "stat.csv"),
        "-fd", "1",
        "-timeout", f"{sipp_timeout}s",
        "-timeout_error",
    ]  # fmt: skip
    if rate is not None:
        args += ["-r", f"{rate:g}"]
    if limit is not None:
        args += ["-l", str(limit)]
    if service is not None:
        args += ["-s", service]
    for name, value in (sets or {}).items():
        args += ["-set", name, str(value)]
    for name, value in (keys or {}).items():
        args += ["-key", name, str(value)]
    args += list(extra_args)
    if target is not None:
        args.append(target)
    proc = SippProcess(args, workdir, timeout=timeout, cleanup=cleanup, address=f"{host}:{local_port}")
    if target is None and transport.startswith("u"):
        # A UAS must be listening before anyone calls it.
        if not wait_udp_bound(host, local_port) and proc.process.poll() is not None:
            proc.wait(timeout=0)
    return proc


def run_sipp(
    scenario: str | os.PathLike[str],
    target: str | None,
    *,
    calls: int = 1,
    rate: float | None = None,
    limit: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 60,
    **options: object,
) -> SippResult:
    """Run SIPp to the end (or to `timeout` seconds, then kill it) and return its result.
    Keyword options are those of start_sipp()."""
    proc = start_sipp(
        scenario,
        target,
        calls=calls,
        rate=rate,
        limit=limit,
        extra_args=extra_args,
        timeout=timeout,
        **options,  # type: ignore[arg-type]
    )
    return proc.wait()


@contextlib.contextmanager
def sipp_background(
    scenario: str | os.PathLike[str], target: str | None = None, **options: object
) -> Iterator[SippProcess]:
    """A SIPp (usually a UAS) running for the duration of a with-block, stopped at its end."""
    proc = start_sipp(scenario, target, **options)  # type: ignore[arg-type]
    try:
        yield proc
    finally:
        proc.stop()
