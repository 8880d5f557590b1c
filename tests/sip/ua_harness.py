"""Two (or more) user agent cores wired together with a fake clock; no sockets, no sleeping."""

from __future__ import annotations

from collections.abc import Callable

from ivr.sip.events import Event
from ivr.sip.message import SipRequest, SipResponse, parse_message
from ivr.sip.useragent import UserAgent, UserAgentConfig

SDP_A = b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
SDP_B = b"v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"

Drop = Callable[[SipRequest | SipResponse, tuple[str, int], tuple[str, int]], bool]


def make_ua(port: int, **kwargs: object) -> UserAgent:
    return UserAgent(UserAgentConfig(host="127.0.0.1", port=port, **kwargs))  # type: ignore[arg-type]


class Net:
    """Delivers datagrams between cores by address; records everything sent as (time, src, dst, msg)."""

    def __init__(self, *uas: UserAgent) -> None:
        self.now = 0.0
        self.uas = {(ua.config.host, ua.config.port): ua for ua in uas}
        self.log: list[tuple[float, tuple[str, int], tuple[str, int], SipRequest | SipResponse]] = []
        self.events: dict[tuple[str, int], list[Event]] = {addr: [] for addr in self.uas}
        self.outside: list[tuple[bytes, tuple[str, int]]] = []  # sent to addresses we do not know

    def pump(self, drop: Drop | None = None) -> None:
        moved = True
        while moved:
            moved = False
            for src, ua in list(self.uas.items()):
                for data, dst in ua.datagrams_to_send():
                    moved = True
                    message = parse_message(data)
                    self.log.append((self.now, src, dst, message))
                    if drop is not None and drop(message, src, dst):
                        continue
                    target = self.uas.get(dst)
                    if target is None:
                        self.outside.append((data, dst))
                    else:
                        target.receive_datagram(data, src, self.now)
            self.collect()

    def collect(self) -> None:
        for addr, ua in self.uas.items():
            while (event := ua.next_event()) is not None:
                self.events[addr].append(event)

    def next_timer(self) -> float | None:
        timers = [t for ua in self.uas.values() if (t := ua.get_timer()) is not None]
        return min(timers) if timers else None

    def advance(self, until: float, drop: Drop | None = None) -> None:
        """Run every timer up to `until`, pumping after each."""
        while (t := self.next_timer()) is not None and t <= until:
            self.now = max(self.now, t)
            for ua in self.uas.values():
                ua.handle_timer(self.now)
            self.pump(drop)
        self.now = max(self.now, until)

    def of(self, ua: UserAgent) -> list[Event]:
        return self.events[(ua.config.host, ua.config.port)]

    def sent(self, src: UserAgent, kind: str) -> list[tuple[float, SipRequest | SipResponse]]:
        """Messages sent by `src`: kind is a method ("INVITE") or a status ("200")."""
        addr = (src.config.host, src.config.port)
        out = []
        for t, s, _, m in self.log:
            if s != addr:
                continue
            if isinstance(m, SipRequest) and m.method == kind:
                out.append((t, m))
            elif isinstance(m, SipResponse) and str(m.status) == kind:
                out.append((t, m))
        return out
