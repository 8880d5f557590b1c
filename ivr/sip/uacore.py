"""Shared state and plumbing of the user agent core (RFC 3261 §8, §13, §17 glue).

`CoreBase` owns everything the UAS, UAC and registration halves (uas.py, uac.py,
registration.py) share: the transaction tables, the calls, the outgoing datagram queue, the event
queue, and one timer heap for all of them. `UserAgent` in useragent.py puts the halves together
and adds the shell-facing API.

Timers: every deadline (transaction Timers A..M, the UA core's 2xx retransmission and ACK wait,
registration refresh) lives in the owning object's `timers` dict and is pushed onto the heap when
armed. A heap entry is live only if the owner still holds the same deadline, so cancelling is just
deleting from the dict (lazy deletion); `get_timer` pops stale entries, then reads the top.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.sip.dialog import Dialog
from ivr.sip.errors import SipParseError
from ivr.sip.events import CallEnded, Event
from ivr.sip.message import (
    SipRequest,
    SipResponse,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_via,
)
from ivr.sip.transaction import (
    ClientKey,
    ClientTransaction,
    ServerKey,
    ServerTransaction,
    Timer,
    TimerValues,
    Transaction,
)
from ivr.sip.uri import format_host

Addr = tuple[str, int]

# §8.2.1: methods we know; anything else is answered 501 Not Implemented.
KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
     "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE"}
)  # fmt: skip


@dataclass
class UserAgentConfig:
    host: str = "127.0.0.1"
    port: int = 5060
    transport: str = "UDP"  # "UDP" or "TCP"
    user: str = "ivr"
    display_name: str | None = None
    user_agent: str = "ivr/0.1"
    # §8.2.1: methods we accept as a UAS; known ones outside this list get 405 with Allow.
    allowed_methods: tuple[str, ...] = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY")
    supported: tuple[str, ...] = ()  # option tags (§8.2.2.3); none by default
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    max_calls: int | None = None
    # Calls one source address may hold at once (a scanner or a runaway PBX must not take every
    # line); None: no limit. A trunk that carries many calls from one address needs a high one.
    max_calls_per_source: int | None = None
    # Credentials for 401/407 on INVITE (§22.2); REGISTER takes its own.
    auth_username: str | None = None
    auth_password: str | None = None
    # Call-IDs of what we originate (calls, registrations). Several worker processes behind one
    # port route by Call-ID, so each makes Call-IDs that route back to itself.
    call_id_factory: Callable[[str], str] = new_call_id

    @property
    def reliable(self) -> bool:
        return self.transport.upper() != "UDP"


# --- the call state machine ------------------------------------------------------------------
#
# A call's state says which INVITE exchange it is in, in the manner of the transaction tables in
# transaction.py and h2's stream machine: ``(state, input) -> next state``. A call starts in
# INCOMING (we received the INVITE) or CALLING (we sent it) and only ever moves through the table.
# Who asks for a move checks first that the move is one it wants (the ACK that confirms the call is
# the one for our 2xx, not for a re-INVITE's), so an input with no entry is a bug in the core:
# `advance` raises `CallStateError`, which `UserAgent` reports as a dropped message instead of
# letting it reach the event loop. Ending is allowed from every live state and only once: ENDED
# has no way out, so a call cannot be ended twice or come back to life.


class CallState(enum.Enum):
    INCOMING = "incoming"  # UAS: INVITE received, no final response yet
    CALLING = "calling"  # UAC: INVITE sent, no final response yet
    WAITING_ACK = "waiting ACK"  # UAS: 2xx sent, retransmitted until the ACK (§13.3.1.4)
    CONFIRMED = "confirmed"
    ENDED = "ended"


class CallInput(enum.Enum):
    SEND_2XX = "2xx sent"  # we answered an incoming call
    RECV_ACK = "ACK received"  # the ACK for that 2xx
    RECV_2XX = "2xx received"  # our INVITE was answered
    END = "end"  # BYE either way, CANCEL, a final non-2xx, no ACK, a timeout


class CallStateError(Exception):
    """The core asked a call for a move its state has no entry for: a bug, not bad input."""

    def __init__(self, state: CallState, event: CallInput) -> None:
        super().__init__(f"no call transition from {state.value!r} on {event.value!r}")
        self.state = state
        self.event = event


CALL_TRANSITIONS: dict[tuple[CallState, CallInput], CallState] = {
    (CallState.INCOMING, CallInput.SEND_2XX): CallState.WAITING_ACK,  # start the 2xx retransmission
    (CallState.INCOMING, CallInput.END): CallState.ENDED,  # rejected, CANCELled, hung up ringing
    (CallState.CALLING, CallInput.RECV_2XX): CallState.CONFIRMED,  # the core sends the ACK (§13.2.2.4)
    (CallState.CALLING, CallInput.END): CallState.ENDED,  # failed, cancelled, timed out
    (CallState.WAITING_ACK, CallInput.RECV_ACK): CallState.CONFIRMED,
    (CallState.WAITING_ACK, CallInput.END): CallState.ENDED,  # BYE, or no ACK in 64*T1
    (CallState.CONFIRMED, CallInput.END): CallState.ENDED,
}


def next_call_state(state: CallState, event: CallInput) -> CallState:
    """The table's answer; raises CallStateError when it has none."""
    following = CALL_TRANSITIONS.get((state, event))
    if following is None:
        raise CallStateError(state, event)
    return following


@dataclass(eq=False)
class UaCall:
    """The UA core's record of one INVITE call: its dialog, transactions and 2xx/ACK timers.

    Not the application's call (ivr.call): this one only knows SIP."""

    call_id: str
    uas: bool
    state: CallState
    invite: SipRequest  # the initial INVITE, ours or theirs
    local_tag: str
    remote_addr: Addr  # UAS: where responses go; UAC: where the INVITE went
    dialog: Dialog | None = None
    invite_server_tx: ServerTransaction | None = None
    invite_client_tx: ClientTransaction | None = None
    timers: dict[str, float] = field(default_factory=dict)
    # UAS 2xx retransmission (§13.3.1.4), for the initial INVITE or a re-INVITE
    ok_data: bytes | None = None
    ok_addr: Addr | None = None
    ok_interval: float = 0.0
    ok_cseq: int = 0
    bye_after_ack: bool = False  # §15: the callee waits for the ACK before sending BYE
    # UAC
    ack_data: bytes | None = None  # re-sent for each retransmitted 2xx (§13.2.2.4)
    ack_addr: Addr | None = None
    cancel_wanted: bool = False  # §9.1: CANCEL only after a provisional response
    cancel_sent: bool = False
    got_provisional: bool = False
    auth_tried: bool = False
    proxy: Addr | None = None
    # re-INVITE (§14)
    reinvite_server_tx: ServerTransaction | None = None
    reinvite_client_tx: ClientTransaction | None = None
    # UAS over a stream transport: the connection (its source address) the INVITE came on.
    # In-dialog requests reuse it (RFC 5626 §4.5 flow reuse; §18.2.2 for the responses).
    flow: Addr | None = None

    def advance(self, event: CallInput) -> None:
        """Move along CALL_TRANSITIONS; the only way a call's state changes after creation."""
        self.state = next_call_state(self.state, event)


@dataclass(eq=False)
class Timed:
    """Owner of named deadlines on the core's heap (see module docstring)."""

    timers: dict[str, float] = field(default_factory=dict)


HeapOwner = Transaction | UaCall | Timed
HeapTag = Timer | str


class CoreBase:
    """State and helpers shared by the UAS, UAC and registration halves of the core."""

    def __init__(self, config: UserAgentConfig) -> None:
        self.config = config
        self.values = TimerValues(config.t1, config.t2, config.t4)
        self._outbox: list[tuple[bytes, Addr]] = []
        self._events: deque[Event] = deque()
        self._heap: list[tuple[float, int, HeapOwner, HeapTag]] = []
        self._seq = itertools.count()
        self._server_tx: dict[ServerKey, ServerTransaction] = {}
        self._client_tx: dict[ClientKey, ClientTransaction] = {}
        # what each client transaction is for: (purpose, call id or AOR)
        self._client_owner: dict[ClientKey, tuple[str, str]] = {}
        self._calls: dict[str, UaCall] = {}
        # ACKs for 2xx by INVITE client transaction, re-sent for retransmitted 2xx (§13.2.2.4)
        self._acks: dict[ClientKey, tuple[bytes, Addr]] = {}
        # §8.2.2.2 merged requests: (Call-ID, From tag, CSeq) -> transaction of the first copy
        self._recent: dict[tuple[str, str, str], ServerTransaction] = {}
        self.closing = False
        self.dropped = 0

    # --- queues and timers ----------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _send(self, data: bytes, addr: Addr) -> None:
        self._outbox.append((data, addr))

    def _push_timer(self, owner: HeapOwner, tag: HeapTag, when: float) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), owner, tag))

    def _set_timer(self, owner: UaCall | Timed, name: str, when: float) -> None:
        owner.timers[name] = when
        self._push_timer(owner, name, when)

    def _flush(self, tx: Transaction) -> None:
        """Move what a transaction wants sent to the outbox and its new timers to the heap."""
        for data in tx.outbox:
            self._outbox.append((data, tx.addr))
        tx.outbox.clear()
        for when, timer in tx.armed:
            self._push_timer(tx, timer, when)
        tx.armed.clear()
        if tx.terminated:
            if isinstance(tx, ServerTransaction):
                if self._server_tx.get(tx.key) is tx:
                    del self._server_tx[tx.key]
            elif isinstance(tx, ClientTransaction) and self._client_tx.get(tx.key) is tx:
                del self._client_tx[tx.key]
                self._client_owner.pop(tx.key, None)
                self._acks.pop(tx.key, None)

    # --- building messages ----------------------------------------------------------------

    def _via(self, branch: str | None = None, transport: str | None = None) -> str:
        c = self.config
        # RFC 3581: ask for rport so responses come back through NATs to the port we sent from.
        sent_by = f"{format_host(c.host)}:{c.port}"
        return f"SIP/2.0/{(transport or c.transport).upper()} {sent_by};branch={branch or new_branch()};rport"

    def _contact(self, user: str | None = None) -> str:
        c = self.config
        transport = ";transport=tcp" if c.reliable else ""
        return f"<sip:{user or c.user}@{format_host(c.host)}:{c.port}{transport}>"

    def _respond(
        self,
        tx: ServerTransaction,
        status: int,
        now: float,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        dialog_forming: bool = False,
    ) -> SipResponse:
        """Send a response through its server transaction (§8.2.6)."""
        request = tx.request
        # §8.2.6.2: every response but 100 carries a To tag; out-of-dialog ones get a fresh one.
        if status != 100 and to_tag is None:
            to_tag = new_tag()  # ignored by make_response when To already has a tag
        response = make_response(request, status, reason, to_tag=to_tag if status != 100 else None)
        h = response.headers
        if dialog_forming and 100 < status < 300:
            # §12.1.1: Record-Route is copied into dialog-creating responses; Contact is ours.
            for rr in request.headers.get_all("Record-Route"):
                h.add("Record-Route", rr)
            h.add("Contact", self._contact())
        if status >= 200 or dialog_forming:
            h.add("Server", self.config.user_agent)
        for name, value in extra or ():
            h.add(name, value)
        if body:
            h.add("Content-Type", content_type or "application/sdp")
            response.body = body
        tx.send_response(response, now)
        self._flush(tx)
        return response

    def _new_server_tx(self, request: SipRequest, addr: Addr, now: float) -> ServerTransaction:
        tx = ServerTransaction(
            request,
            self._response_addr(request, addr),
            now,
            reliable=self.config.reliable or arrived_reliably(request),
            values=self.values,
        )
        self._server_tx[tx.key] = tx
        return tx

    def _response_addr(self, request: SipRequest, addr: Addr) -> Addr:
        """§18.2.2 and RFC 3581 §4: UDP responses go to received/rport, else the sent-by port."""
        if self.config.reliable or arrived_reliably(request):
            return addr  # §18.2.2: over a stream, the response uses the request's connection
        via = parse_via(request.headers.get("Via") or "")
        # §18.2.1 makes received= the packet's source whenever sent-by differs, so the host is
        # always the source. A received= or rport= the sender wrote itself is not followed: a name
        # there would cost a blocking DNS lookup per datagram, a number would reflect our answers
        # elsewhere, and rport=² is a digit to str.isdigit() but not to int().
        if "rport" in via.params:
            return (addr[0], addr[1])
        return (addr[0], via.port or 5060)

    def _start_client_tx(
        self, request: SipRequest, addr: Addr, now: float, purpose: str, owner: str, reliable: bool = False
    ) -> ClientTransaction:
        tx = ClientTransaction(
            request, addr, now, reliable=reliable or self.config.reliable, values=self.values
        )
        self._client_tx[tx.key] = tx
        self._client_owner[tx.key] = (purpose, owner)
        self._flush(tx)
        return tx

    def _in_dialog(
        self,
        call: UaCall,
        method: str,
        now: float,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        purpose: str | None = None,
    ) -> ClientTransaction | None:
        """Send an in-dialog request (§12.2.1.1) through a new client transaction."""
        dialog = call.dialog
        if dialog is None:
            return None
        headers: list[tuple[str, str]] = [("User-Agent", self.config.user_agent)]
        headers.extend(extra or ())
        contact = self._contact() if method in ("INVITE", "UPDATE", "REFER", "SUBSCRIBE") else None
        via = self._via(transport="TCP") if call.flow is not None else self._via()
        request = dialog.create_request(
            method, via, contact=contact, body=body, content_type=content_type, extra_headers=headers
        )
        hop = call.flow if call.flow is not None else dialog.next_hop()
        return self._start_client_tx(
            request, hop, now, purpose or method.lower(), call.call_id, reliable=call.flow is not None
        )

    def _end_call(self, call: UaCall, reason: str, by_remote: bool, status: int | None) -> None:
        """Forget the call and tell the application. Transactions finish on their own timers."""
        if call.state is CallState.ENDED:
            return
        call.advance(CallInput.END)
        call.timers.clear()
        if self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]
        self._emit(CallEnded(call.call_id, reason, by_remote, status))

    def _drop_call(self, call: UaCall) -> None:
        """Forget a call without a CallEnded (the caller emits a more specific event)."""
        call.advance(CallInput.END)
        call.timers.clear()
        if self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]

    def _send_bye(self, call: UaCall, now: float) -> None:
        self._in_dialog(call, "BYE", now)


RELIABLE_TRANSPORTS = frozenset({"TCP", "TLS", "SCTP", "WS", "WSS"})


def arrived_reliably(request: SipRequest) -> bool:
    """Whether the top Via names a stream transport, i.e. the request came over a connection."""
    value = request.headers.get("Via")
    if not value:
        return False
    try:
        return parse_via(value).transport.upper() in RELIABLE_TRANSPORTS
    except SipParseError:
        return False
