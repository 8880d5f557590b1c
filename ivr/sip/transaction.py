"""SIP transactions (RFC 3261 §17) as sans-IO state machines.

Theory of operation
-------------------
A transaction is one request and every response to it, retransmissions included. There are four
machines: INVITE client (§17.1.1), non-INVITE client (§17.1.2), INVITE server (§17.2.1) and
non-INVITE server (§17.2.2). Each is written down below as a transition table,
``(state, input) -> next state``, in the manner of h2's stream machine: an input with no entry in
the table is not a crash. Inputs from the network without an entry (a late 180 after the final
response, say) are absorbed; inputs from the transaction user (TU) without an entry raise
`TransactionStateError`, because they are bugs in the caller.

The INVITE machines include the Accepted state of RFC 6026, which fixes a hole in RFC 3261: after a
2xx the server transaction stays alive for Timer L (64*T1) to absorb retransmitted INVITEs instead
of presenting them to the core as new calls, and the client transaction stays alive for Timer M to
pass retransmitted 2xx responses up so that the dialog layer can re-send its ACK (§13.2.2.4). The
2xx itself is retransmitted by the UA core until the ACK arrives (§13.3.1.4), not here.

Nothing here reads a clock or sends a packet. Each method takes `now`; messages to send are
appended to `outbox` (bytes for the transaction's `addr`), and every (re)armed timer is appended to
`armed` so that the owner can push it onto its heap. The owner calls `handle_timer(timer, now)` when
the deadline passes; a deadline that no longer matches `timers[timer]` is stale and must be ignored
(`is_due` tells). Timers that only exist for unreliable transports (A, E, G) are not started over
TCP, and the wait timers D, I, J, K are zero there (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ivr.sip.message import Headers, SipRequest, SipResponse, parse_via


@dataclass(frozen=True)
class TimerValues:
    """T1 (RTT estimate), T2 (max retransmit interval for non-INVITE), T4 (max message lifetime).

    Defaults are those of RFC 3261 §17.1.1.1 and Table 4.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"  # RFC 6026 §7.1 / §8.4
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class Timer(enum.Enum):
    """RFC 3261 Table 4, plus L and M from RFC 6026."""

    A = "A"  # INVITE request retransmit interval, UDP only
    B = "B"  # INVITE transaction timeout
    D = "D"  # wait time for response retransmits
    E = "E"  # non-INVITE request retransmit interval, UDP only
    F = "F"  # non-INVITE transaction timeout
    G = "G"  # INVITE response retransmit interval
    H = "H"  # wait time for ACK receipt
    I = "I"  # noqa: E741 - the RFC's name; wait time for ACK retransmits
    J = "J"  # wait time for non-INVITE request retransmits
    K = "K"  # wait time for response retransmits
    L = "L"  # wait time for accepted INVITE request retransmits
    M = "M"  # wait time for retransmission of 2xx to INVITE


class Input(enum.Enum):
    # from the network
    REQUEST = "request retransmission"
    ACK = "ACK"
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_FINAL = "300-699 received"
    # from the transaction user
    SEND_1XX = "send 1xx"
    SEND_2XX = "send 2xx"
    SEND_FINAL = "send 300-699"
    # timers
    TIMER = "timer"


class Kind(enum.Enum):
    INVITE_CLIENT = "INVITE client"
    NON_INVITE_CLIENT = "non-INVITE client"
    INVITE_SERVER = "INVITE server"
    NON_INVITE_SERVER = "non-INVITE server"


class TransactionStateError(Exception):
    """The transaction user asked for something its transaction's state does not allow."""


S = State
_Key = tuple[State, Input | Timer]

# §17.2.1 Figure 7, with RFC 6026 Figure 5 (Accepted).
INVITE_SERVER: dict[_Key, State] = {
    (S.PROCEEDING, Input.REQUEST): S.PROCEEDING,  # resend the last provisional
    (S.PROCEEDING, Input.SEND_1XX): S.PROCEEDING,
    (S.PROCEEDING, Input.SEND_2XX): S.ACCEPTED,  # start Timer L
    (S.PROCEEDING, Input.SEND_FINAL): S.COMPLETED,  # start Timers G and H
    (S.ACCEPTED, Input.REQUEST): S.ACCEPTED,  # absorbed: the UA core retransmits the 2xx
    (S.ACCEPTED, Input.SEND_2XX): S.ACCEPTED,
    (S.ACCEPTED, Timer.L): S.TERMINATED,
    (S.COMPLETED, Input.REQUEST): S.COMPLETED,  # resend the final response
    (S.COMPLETED, Timer.G): S.COMPLETED,  # resend, double G up to T2
    (S.COMPLETED, Input.ACK): S.CONFIRMED,  # start Timer I
    (S.COMPLETED, Timer.H): S.TERMINATED,  # no ACK: inform the TU
    (S.CONFIRMED, Input.ACK): S.CONFIRMED,  # absorbed
    (S.CONFIRMED, Input.REQUEST): S.CONFIRMED,  # absorbed
    (S.CONFIRMED, Timer.I): S.TERMINATED,
}

# §17.2.2 Figure 8.
NON_INVITE_SERVER: dict[_Key, State] = {
    (S.TRYING, Input.REQUEST): S.TRYING,  # absorbed: nothing to resend yet
    (S.TRYING, Input.SEND_1XX): S.PROCEEDING,
    (S.TRYING, Input.SEND_2XX): S.COMPLETED,  # start Timer J
    (S.TRYING, Input.SEND_FINAL): S.COMPLETED,
    (S.PROCEEDING, Input.REQUEST): S.PROCEEDING,  # resend the last provisional
    (S.PROCEEDING, Input.SEND_1XX): S.PROCEEDING,
    (S.PROCEEDING, Input.SEND_2XX): S.COMPLETED,
    (S.PROCEEDING, Input.SEND_FINAL): S.COMPLETED,
    (S.COMPLETED, Input.REQUEST): S.COMPLETED,  # resend the final response
    (S.COMPLETED, Timer.J): S.TERMINATED,
}

# §17.1.1 Figure 5, with RFC 6026 Figure 4 (Accepted).
INVITE_CLIENT: dict[_Key, State] = {
    (S.CALLING, Timer.A): S.CALLING,  # retransmit, double A
    (S.CALLING, Timer.B): S.TERMINATED,  # timeout: inform the TU
    (S.CALLING, Input.RECV_1XX): S.PROCEEDING,
    (S.CALLING, Input.RECV_2XX): S.ACCEPTED,  # start Timer M
    (S.CALLING, Input.RECV_FINAL): S.COMPLETED,  # send ACK, start Timer D
    (S.PROCEEDING, Input.RECV_1XX): S.PROCEEDING,
    (S.PROCEEDING, Input.RECV_2XX): S.ACCEPTED,
    (S.PROCEEDING, Input.RECV_FINAL): S.COMPLETED,
    (S.ACCEPTED, Input.RECV_2XX): S.ACCEPTED,  # passed up so the dialog layer re-ACKs
    (S.ACCEPTED, Timer.M): S.TERMINATED,
    (S.COMPLETED, Input.RECV_FINAL): S.COMPLETED,  # resend ACK, not passed up
    (S.COMPLETED, Timer.D): S.TERMINATED,
}

# §17.1.2 Figure 6.
NON_INVITE_CLIENT: dict[_Key, State] = {
    (S.TRYING, Timer.E): S.TRYING,  # retransmit, E = min(2E, T2)
    (S.TRYING, Timer.F): S.TERMINATED,  # timeout: inform the TU
    (S.TRYING, Input.RECV_1XX): S.PROCEEDING,
    (S.TRYING, Input.RECV_2XX): S.COMPLETED,  # start Timer K
    (S.TRYING, Input.RECV_FINAL): S.COMPLETED,
    (S.PROCEEDING, Timer.E): S.PROCEEDING,  # retransmit, E = T2
    (S.PROCEEDING, Timer.F): S.TERMINATED,
    (S.PROCEEDING, Input.RECV_1XX): S.PROCEEDING,
    (S.PROCEEDING, Input.RECV_2XX): S.COMPLETED,
    (S.PROCEEDING, Input.RECV_FINAL): S.COMPLETED,
    (S.COMPLETED, Timer.K): S.TERMINATED,
}

TABLES: dict[Kind, dict[_Key, State]] = {
    Kind.INVITE_SERVER: INVITE_SERVER,
    Kind.NON_INVITE_SERVER: NON_INVITE_SERVER,
    Kind.INVITE_CLIENT: INVITE_CLIENT,
    Kind.NON_INVITE_CLIENT: NON_INVITE_CLIENT,
}

MAGIC_COOKIE = "z9hG4bK"  # §8.1.1.7: branches from RFC 3261 elements start with it

ServerKey = tuple[str, str, str]
ClientKey = tuple[str, str]


def _status_input(status: int, send: bool) -> Input:
    if status < 200:
        return Input.SEND_1XX if send else Input.RECV_1XX
    if status < 300:
        return Input.SEND_2XX if send else Input.RECV_2XX
    return Input.SEND_FINAL if send else Input.RECV_FINAL


def server_key(request: SipRequest, method: str | None = None) -> ServerKey:
    """Key matching a request to its server transaction (§17.2.3).

    The key is the top Via branch, its sent-by and the method, where ACK counts as INVITE (the ACK
    for a non-2xx belongs to the INVITE transaction). `method` overrides the request's own, which
    is how a CANCEL finds the INVITE it cancels (§9.2). Requests without the magic cookie (RFC 2543
    peers) fall back to Call-ID, From tag, CSeq number and the whole top Via.
    """
    via_value = request.headers.get("Via") or ""
    via = parse_via(via_value)
    m = method or request.method
    if m == "ACK":
        m = "INVITE"
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        sent_by = f"{via.host.lower()}:{via.port or 5060}"
        return (branch, sent_by, m)
    cseq = (request.headers.get("CSeq") or "").split(" ", 1)[0]
    legacy = "|".join(
        (request.headers.get("Call-ID") or "", _from_tag(request.headers.get("From") or ""), cseq)
    )
    return ("rfc2543:" + legacy, via_value.strip(), m)


def client_key_for_response(response: SipResponse) -> ClientKey:
    """Key matching a response to its client transaction: top Via branch and CSeq method (§17.1.3)."""
    via = parse_via(response.headers.get("Via") or "")
    cseq = (response.headers.get("CSeq") or "").split()
    return (via.branch or "", cseq[1] if len(cseq) > 1 else "")


def _from_tag(value: str) -> str:
    for part in value.split(";")[1:]:
        name, _, tag = part.partition("=")
        if name.strip().lower() == "tag":
            return tag.strip()
    return ""


@dataclass(eq=False)
class Transaction:
    """State shared by the four machines; see the module docstring for the contract."""

    kind: Kind
    request: SipRequest
    addr: tuple[str, int]
    reliable: bool
    values: TimerValues
    state: State
    timers: dict[Timer, float] = field(default_factory=dict)
    intervals: dict[Timer, float] = field(default_factory=dict)
    outbox: list[bytes] = field(default_factory=list)
    armed: list[tuple[float, Timer]] = field(default_factory=list)
    timed_out: bool = False

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def is_due(self, timer: Timer, when: float) -> bool:
        """Whether a heap entry (when, timer) is still the live deadline of this transaction."""
        return not self.terminated and self.timers.get(timer) == when

    def handle_timer(self, timer: Timer, now: float) -> None:
        raise NotImplementedError

    def _step(self, event: Input | Timer) -> State | None:
        nxt = TABLES[self.kind].get((self.state, event))
        if nxt is not None:
            self.state = nxt
            if nxt is State.TERMINATED:
                self.timers.clear()
        return nxt

    def _arm(self, timer: Timer, now: float, interval: float) -> None:
        self.intervals[timer] = interval
        when = now + interval
        self.timers[timer] = when
        self.armed.append((when, timer))

    def _cancel(self, *timers: Timer) -> None:
        for timer in timers:
            self.timers.pop(timer, None)


class ServerTransaction(Transaction):
    """INVITE and non-INVITE server transactions (§17.2.1, §17.2.2)."""

    last_response: bytes | None

    def __init__(
        self,
        request: SipRequest,
        addr: tuple[str, int],
        now: float,
        *,
        reliable: bool = False,
        values: TimerValues | None = None,
    ) -> None:
        invite = request.method == "INVITE"
        super().__init__(
            kind=Kind.INVITE_SERVER if invite else Kind.NON_INVITE_SERVER,
            request=request,
            addr=addr,
            reliable=reliable,
            values=values or TimerValues(),
            state=State.PROCEEDING if invite else State.TRYING,
        )
        self.key = server_key(request)
        self.last_response = None
        self.last_status = 0

    def receive_request(self, request: SipRequest, now: float) -> bool:
        """A request matching this transaction arrived again.

        Returns True when the TU must see it (only an ACK in Accepted, which in practice does not
        happen because the ACK for a 2xx carries a new branch); everything else is absorbed here,
        resending the last response where the state machine says so.
        """
        event = Input.ACK if request.method == "ACK" else Input.REQUEST
        before = self.state
        if self._step(event) is None:
            return False
        if event is Input.REQUEST and before in (State.PROCEEDING, State.COMPLETED):
            if self.last_response is not None:
                self.outbox.append(self.last_response)
        elif event is Input.ACK and before is State.COMPLETED:
            # §17.2.1: ACK stops G and H; Timer I absorbs further ACK retransmissions.
            self._cancel(Timer.G, Timer.H)
            self._arm(Timer.I, now, 0.0 if self.reliable else self.values.t4)
        return event is Input.ACK and before is State.ACCEPTED

    def send_response(self, response: SipResponse, now: float) -> None:
        """The TU sends a response; the transaction sends it and keeps it for retransmission."""
        event = _status_input(response.status, send=True)
        before = self.state
        if self._step(event) is None:
            raise TransactionStateError(
                f"cannot send {response.status} in {self.kind.value} state {self.state.value}"
            )
        data = bytes(response)
        self.outbox.append(data)
        self.last_status = response.status
        if event is Input.SEND_2XX and before is State.ACCEPTED:
            return  # a 2xx retransmission from the UA core: keep the first as last_response
        self.last_response = data
        t1 = self.values.t1
        if self.kind is Kind.INVITE_SERVER:
            if event is Input.SEND_2XX:
                self._arm(Timer.L, now, 64 * t1)
            elif event is Input.SEND_FINAL:
                if not self.reliable:
                    self._arm(Timer.G, now, t1)
                self._arm(Timer.H, now, 64 * t1)
        elif event is not Input.SEND_1XX:
            self._arm(Timer.J, now, 0.0 if self.reliable else 64 * t1)

    def handle_timer(self, timer: Timer, now: float) -> None:
        """A deadline passed. After Timer H, `timed_out` is set: the ACK never came (§17.2.1)."""
        if self._step(timer) is None:
            return
        if timer is Timer.G and self.last_response is not None:
            self.outbox.append(self.last_response)
            self._arm(Timer.G, now, min(2 * self.intervals[Timer.G], self.values.t2))
        elif timer is Timer.H:
            self.timed_out = True


class ClientTransaction(Transaction):
    """INVITE and non-INVITE client transactions (§17.1.1, §17.1.2)."""

    def __init__(
        self,
        request: SipRequest,
        addr: tuple[str, int],
        now: float,
        *,
        reliable: bool = False,
        values: TimerValues | None = None,
    ) -> None:
        invite = request.method == "INVITE"
        super().__init__(
            kind=Kind.INVITE_CLIENT if invite else Kind.NON_INVITE_CLIENT,
            request=request,
            addr=addr,
            reliable=reliable,
            values=values or TimerValues(),
            state=State.CALLING if invite else State.TRYING,
        )
        via = parse_via(request.headers.get("Via") or "")
        self.key: ClientKey = (via.branch or "", request.method)
        self.ack: bytes | None = None
        self._data = bytes(request)
        self.outbox.append(self._data)
        t1 = self.values.t1
        if invite:
            if not reliable:
                self._arm(Timer.A, now, t1)
            self._arm(Timer.B, now, 64 * t1)
        else:
            if not reliable:
                self._arm(Timer.E, now, t1)
            self._arm(Timer.F, now, 64 * t1)

    def receive_response(self, response: SipResponse, now: float) -> bool:
        """A response matching this transaction arrived. Returns True when the TU must see it."""
        event = _status_input(response.status, send=False)
        before = self.state
        if self._step(event) is None:
            return False  # e.g. a late provisional after the final response: absorbed
        if self.kind is Kind.INVITE_CLIENT:
            if event is Input.RECV_FINAL:
                if before is not State.COMPLETED:
                    # §17.1.1.3: the ACK for a non-2xx final response is built here.
                    self.ack = bytes(build_non_2xx_ack(self.request, response))
                    self._cancel(Timer.A, Timer.B)
                    self._arm(Timer.D, now, 0.0 if self.reliable else 32.0)
                if self.ack is not None:
                    self.outbox.append(self.ack)
                return before is not State.COMPLETED
            if event is Input.RECV_2XX and before is not State.ACCEPTED:
                self._cancel(Timer.A, Timer.B)
                self._arm(Timer.M, now, 64 * self.values.t1)
            elif event is Input.RECV_1XX:
                self._cancel(Timer.A)  # §17.1.1.2: no more retransmissions once Proceeding
            return True
        if event is not Input.RECV_1XX:
            self._cancel(Timer.E, Timer.F)
            self._arm(Timer.K, now, 0.0 if self.reliable else self.values.t4)
        return True

    def handle_timer(self, timer: Timer, now: float) -> None:
        """A deadline passed. After Timer B or F, `timed_out` is set: report 408 to the TU."""
        before = self.state
        if self._step(timer) is None:
            return
        if timer is Timer.A:
            self.outbox.append(self._data)
            self._arm(Timer.A, now, 2 * self.intervals[Timer.A])
        elif timer is Timer.E:
            self.outbox.append(self._data)
            interval = self.values.t2 if before is State.PROCEEDING else 2 * self.intervals[Timer.E]
            self._arm(Timer.E, now, min(interval, self.values.t2))
        elif timer in (Timer.B, Timer.F):
            self.timed_out = True


def build_non_2xx_ack(request: SipRequest, response: SipResponse) -> SipRequest:
    """ACK for a 300-699 response to `request` (§17.1.1.3).

    Same Request-URI, Call-ID, From and CSeq number as the INVITE, only its top Via, the To of the
    response (which carries the tag), and the INVITE's Route headers.
    """
    h = request.headers
    headers = Headers()
    headers.add("Via", h.get_all("Via")[0] if h.get_all("Via") else "")
    for route in h.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", h.get("From") or "")
    headers.add("To", response.headers.get("To") or h.get("To") or "")
    headers.add("Call-ID", h.get("Call-ID") or "")
    headers.add("CSeq", f"{(h.get('CSeq') or '1').split()[0]} ACK")
    return SipRequest("ACK", request.uri, headers)
