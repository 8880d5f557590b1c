"""A throw-away Kamailio registrar/proxy on 127.0.0.1 for interop tests.

    with kamailio_proxy(users={"ivr": "secret", "alice": "alice"}) as kam:
        kam.address          # "127.0.0.1:PORT" (UDP and TCP)
        kam.uri              # "sip:127.0.0.1:PORT"
        kam.registered("ivr", timeout=5) -> bool   # REGISTER known (asks with an OPTIONS probe)

What the generated config does (no database; Kamailio 5.6):
- REGISTER: digest authentication (auth module, pv_www_authenticate) against the `users` table
  (an htable filled at start-up), then save("location") into usrloc in memory (db_mode 0).
- Requests to a user at the proxy itself (sip:USER@127.0.0.1:PORT, or sip:USER@127.0.0.1 with no
  port, which is how pyVoIP dials): lookup("location"), then relay
  to the registered contact; 404 when the user is not registered.  Requests for any other
  destination are forwarded as addressed.  Dialog-forming requests are record-routed; in-dialog
  requests follow loose routing; in-dialog requests without a route set (pyVoIP sends them) are
  delivered like new ones.  Calls are not authenticated.
- An OPTIONS to sip:USER@PORT with header X-Probe: registered is answered by the proxy itself:
  200 when USER has a contact in usrloc, 404 otherwise (this is how registered() asks).

Kamailio runs in the foreground (-DD -E) as our child; it is stopped by its PID (SIGTERM, then
SIGKILL).  Its log (stderr) is in `log_path` for assertion messages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.sipp_runner import LOCALHOST, find_free_udp_port

DEFAULT_USERS: Mapping[str, str] = {"ivr": "secret", "alice": "alice", "bob": "bob", "agent": "agent"}

_CONFIG = """#!KAMAILIO
# Generated for one test run: registrar + proxy, no database.
debug={debug}
log_stderror=yes
memdbg=5
memlog=5
children=1
tcp_children=1
auto_aliases=no
listen=udp:{host}:{port}
listen=tcp:{host}:{port}
alias="{host}:{port}"
dns=no
rev_dns=no
use_dns_cache=off

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "htable.so"

modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "min_expires", 10)
modparam("rr", "enable_full_lr", 1)
modparam("rr", "append_fromtag", 1)
modparam("htable", "htable", "users=>size=4;")

event_route[htable:mod-init] {{
{users}
}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!sanity_check("1511", "7")) {{
        exit;
    }}
    xlog("L_INFO", "$rm $ru from $si:$sp (call-id $ci)\\n");

    if (has_totag()) {{
        if (loose_route()) {{
            route(RELAY);
        }}
        if (is_method("ACK") && t_check_trans()) {{
            t_relay();
            exit;
        }}
        # Lenient on purpose: pyVoIP ignores the route set and sends in-dialog requests (ACK, BYE)
        # straight here without Route headers; deliver them as if they were new.
        route(TO_USER);
        exit;
    }}

    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    t_check_trans();

    if (is_method("REGISTER")) {{
        if ($sht(users=>$tU) == $null
                || !pv_www_authenticate("$td", "$sht(users=>$tU)", "0")) {{
            www_challenge("$td", "0");
            exit;
        }}
        consume_credentials();
        if (!save("location")) {{
            sl_reply_error();
        }}
        exit;
    }}

    if (is_method("OPTIONS") && $hdr(X-Probe) == "registered") {{
        if (registered("location")) {{
            sl_send_reply("200", "Registered");
        }} else {{
            sl_send_reply("404", "Not Registered");
        }}
        exit;
    }}
    if (is_method("OPTIONS") && $rU == $null) {{
        sl_send_reply("200", "OK");
        exit;
    }}

    if (is_method("INVITE|SUBSCRIBE|REFER")) {{
        record_route();
    }}
    route(TO_USER);
}}

route[TO_USER] {{
    # "sip:user@127.0.0.1" without a port means this proxy too (pyVoIP dials like that).
    if (uri == myself || ($rd == "{host}" && $(ru{{uri.port}}) == "")) {{
        if (!lookup("location")) {{
            if (!is_method("ACK")) {{
                sl_send_reply("404", "Not Found");
            }}
            exit;
        }}
    }}
    route(RELAY);
}}

route[RELAY] {{
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}
"""


@dataclass
class Kamailio:
    host: str
    port: int
    pid: int
    workdir: Path
    users: Mapping[str, str]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kamailio.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def registered(self, user: str, timeout: float = 5.0) -> bool:
        """True once Kamailio has a contact for `user` in its location table (polled until timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            status = options_status(self.host, self.port, user=user, headers={"X-Probe": "registered"})
            if status == 200:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def options_status(
    host: str,
    port: int,
    *,
    user: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 1.0,
) -> int | None:
    """Send one OPTIONS over UDP and return the final status code, or None if nothing came back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOCALHOST, 0))
        sock.settimeout(timeout)
        local_port = sock.getsockname()[1]
        ruri = f"sip:{user}@{host}:{port}" if user else f"sip:{host}:{port}"
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        message = (
            f"OPTIONS {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOCALHOST}:{local_port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"From: <sip:probe@{LOCALHOST}:{local_port}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <{ruri}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@{LOCALHOST}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            f"{extra}Content-Length: 0\r\n\r\n"
        )
        sock.sendto(message.encode(), (host, port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65535)
            except (TimeoutError, ConnectionRefusedError):
                return None
            first = data.split(b"\r\n", 1)[0].split()
            if len(first) >= 2 and first[0] == b"SIP/2.0" and first[1].isdigit() and int(first[1]) >= 200:
                return int(first[1])
    return None


def write_config(path: Path, host: str, port: int, users: Mapping[str, str], debug: int = 2) -> None:
    for name, password in users.items():
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or '"' in password:
            raise ValueError(f"unsuitable test user {name!r}")
    lines = "\n".join(f'    $sht(users=>{name}) = "{password}";' for name, password in users.items())
    path.write_text(_CONFIG.format(host=host, port=port, users=lines, debug=debug))


def kamailio_binary() -> str:
    path = shutil.which("kamailio") or next(
        (p for p in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio") if os.access(p, os.X_OK)), None
    )
    if path is None:
        raise FileNotFoundError("kamailio not found: install the Debian package kamailio (bash run.sh does)")
    return path


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    """kamailio -c: parse the config and exit (for a readable error before starting)."""
    return subprocess.run(
        [kamailio_binary(), "-c", "-f", str(config)], capture_output=True, text=True, timeout=20, check=False
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)  # Kamailio's main process ends its own children
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextlib.contextmanager
def kamailio_proxy(
    users: Mapping[str, str] = DEFAULT_USERS,
    *,
    host: str = LOCALHOST,
    port: int | None = None,
    startup_timeout: float = 10.0,
    debug: int = 2,
) -> Iterator[Kamailio]:
    """Start Kamailio (registrar + proxy) on host:port (a free port by default) and yield it."""
    workdir = Path(tempfile.mkdtemp(prefix="kamailio-"))
    port = port or find_free_udp_port(host, also_tcp=True)
    config = workdir / "kamailio.cfg"
    write_config(config, host, port, users, debug)
    log = open(workdir / "kamailio.log", "wb")
    args = [
        kamailio_binary(),
        "-f", str(config),
        "-DD",  # no daemon, no detaching: it stays our child
        "-E",  # log to stderr
        "-n", "1",
        "-m", "32",
        "-M", "8",
        "-Y", str(workdir),  # runtime dir (its control FIFO and pid files would go here)
        "-P", str(workdir / "kamailio.pid"),
    ]  # fmt: skip
    proc = subprocess.Popen(args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    kam = Kamailio(host=host, port=port, pid=proc.pid, workdir=workdir, users=dict(users))
    try:
        deadline = time.monotonic() + startup_timeout
        while options_status(host, port, timeout=0.3) != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kamailio did not start (rc={proc.poll()}):\n{kam.log()[-4000:]}")
        yield kam
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
