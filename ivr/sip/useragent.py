"""The SIP user agent core the shell drives, in the manner of aioquic's QuicConnection.

    ua = UserAgent(UserAgentConfig(host="192.0.2.10", port=5060))
    ua.receive_datagram(data, addr, now)         # bytes in
    for data, addr in ua.datagrams_to_send():    # bytes out
        ...
    ua.get_timer() / ua.handle_timer(now)        # one deadline for everything
    while (event := ua.next_event()) is not None: ...

The application acts with `answer`, `reject`, `hangup`, `invite`... (see uas.py, uac.py and
registration.py, whose mixins make up this class). Nothing here reads a clock, sleeps or touches a
socket; and nothing raises out of `receive_datagram` or `handle_timer`: bad input is answered
where RFC 3261 allows a response and otherwise dropped, counted in `dropped` and reported as a
MessageDropped event.
"""

from __future__ import annotations

import heapq

from ivr.sip.errors import SipParseError
from ivr.sip.events import CallEnded, Event, MessageDropped
from ivr.sip.message import SipRequest, SipResponse, make_response, new_tag, parse_message
from ivr.sip.ratelimit import is_scanner_request
from ivr.sip.registration import Registration, RegistrationMixin
from ivr.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    Timer,
    Transaction,
    client_key_for_response,
)
from ivr.sip.uac import UacMixin
from ivr.sip.uacore import Addr, CallState, HeapOwner, HeapTag, UaCall, UserAgentConfig
from ivr.sip.uas import UasMixin

__all__ = ["CallState", "UserAgent", "UserAgentConfig"]


def _live(owner: HeapOwner, tag: HeapTag, when: float) -> bool:
    if isinstance(owner, Transaction):
        return isinstance(tag, Timer) and owner.is_due(tag, when)
    return isinstance(tag, str) and owner.timers.get(tag) == when


class UserAgent(UasMixin, UacMixin, RegistrationMixin):
    """Sans-IO SIP user agent: UAS, UAC and registration over one set of transactions."""

    # --- the shell-facing API -------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        """Feed one datagram (or one framed stream message) received from `addr`."""
        try:
            self._receive(data, addr, now)
        except SipParseError as exc:  # a header the parser let through but we cannot use
            self._drop(f"malformed message: {exc.reason}")
        except Exception as exc:  # never into the event loop: one bad message is one drop
            self._drop(f"error handling message: {type(exc).__name__}: {exc}")

    def datagrams_to_send(self) -> list[tuple[bytes, tuple[str, int]]]:
        """Everything queued to send, in order. No ``now`` (unlike aioquic): nothing is paced here,
        and every timer was armed when its message was queued."""
        out = self._outbox
        self._outbox = []
        return out

    def get_timer(self) -> float | None:
        """The next deadline, or None. Stale heap entries are discarded on the way (amortised)."""
        heap = self._heap
        while heap:
            when, _, owner, tag = heap[0]
            if _live(owner, tag, when):
                return when
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> None:
        """Run every deadline that has passed by `now`."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, owner, tag = heapq.heappop(heap)
            if not _live(owner, tag, when):
                continue
            try:
                self._fire(owner, tag, now)
            except Exception as exc:
                self._drop(f"error in timer {tag}: {type(exc).__name__}: {exc}")

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # --- lookups --------------------------------------------------------------------------

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def call_state(self, call_id: str) -> CallState | None:
        call = self._calls.get(call_id)
        return call.state if call is not None else None

    def remote_target(self, call_id: str) -> str | None:
        call = self._calls.get(call_id)
        return call.dialog.remote_target if call is not None and call.dialog is not None else None

    # --- application actions common to both halves ---------------------------------------

    def hangup(self, call_id: str, now: float) -> None:
        """End a call whatever its state: BYE, CANCEL (§9.1) or a 480 to an unanswered INVITE."""
        call = self._calls.get(call_id)
        if call is None:
            return
        if call.state is CallState.INCOMING:
            if call.invite_server_tx is not None:
                self._respond(call.invite_server_tx, 480, now, to_tag=call.local_tag)
            self._end_call(call, "hangup", False, 480)
        elif call.state is CallState.CALLING:
            self._cancel_call(call, now)
        elif call.state is CallState.WAITING_ACK:
            # §15: the callee may not send BYE before the ACK (or its timeout) arrives.
            if not call.bye_after_ack:
                call.bye_after_ack = True
                self._emit(CallEnded(call_id, "hangup", False, None))
        elif call.state is CallState.CONFIRMED:
            self._send_bye(call, now)
            self._end_call(call, "hangup", False, None)

    def close(self, now: float) -> None:
        """Start a graceful shutdown: new INVITEs get 503, registrations are removed."""
        self.closing = True
        for aor in list(self._registrations()):
            self.unregister(aor, now)

    # --- internals ------------------------------------------------------------------------

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        self._emit(MessageDropped(reason))

    def _receive(self, data: bytes, addr: Addr, now: float) -> None:
        if not data.strip(b"\r\n"):
            return  # RFC 5626 §3.5.1 keep-alive
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self._on_parse_error(exc, addr)
            return
        if isinstance(message, SipRequest):
            if is_scanner_request(message):
                self._drop("scanner")  # silence: nothing to fingerprint, nothing to enumerate
                return
            self._on_request(message, addr, now)
        else:
            self._on_response(message, now)

    def _on_parse_error(self, exc: SipParseError, addr: Addr) -> None:
        request = exc.partial
        if request is None or request.method == "ACK":
            self._drop(f"unparseable message: {exc.reason}")
            return
        # Enough of the request to answer it statelessly with the parser's status (§8.2, §21.4).
        response = make_response(request, exc.status, None, to_tag=new_tag())
        response.headers.add("Warning", f'399 {self.config.host} "{exc.reason[:80]}"')
        self._send(bytes(response), self._response_addr(request, addr))
        self._drop(f"malformed request answered {exc.status}: {exc.reason}")

    def _on_response(self, response: SipResponse, now: float) -> None:
        tx = self._client_tx.get(client_key_for_response(response))
        if tx is None:
            # §17.1.3 / §18.1.2: a response matching no transaction is dropped.
            self._drop(f"response {response.status} matching no transaction")
            return
        passed = tx.receive_response(response, now)
        self._flush(tx)
        if passed:
            self._dispatch_client(tx, response, now)

    def _dispatch_client(self, tx: ClientTransaction, response: SipResponse | None, now: float) -> None:
        purpose, owner = self._client_owner.get(tx.key, ("", ""))
        if purpose == "register":
            self._on_register_result(tx, owner, response, now)
        else:
            self._on_client_result(tx, response, now)

    def _fire(self, owner: HeapOwner, tag: HeapTag, now: float) -> None:
        if isinstance(owner, Transaction) and isinstance(tag, Timer):
            owner.handle_timer(tag, now)
            # Capture the purpose before _flush forgets a terminated transaction.
            purpose = self._client_owner.get(owner.key) if isinstance(owner, ClientTransaction) else None
            timed_out = owner.timed_out
            self._flush(owner)
            if timed_out and isinstance(owner, ClientTransaction) and purpose is not None:
                self._client_owner[owner.key] = purpose
                try:
                    self._dispatch_client(owner, None, now)
                finally:
                    self._client_owner.pop(owner.key, None)
            elif timed_out and isinstance(owner, ServerTransaction):
                pass  # Timer H: the ACK for our non-2xx never came; the call is already over
            return
        if isinstance(owner, Transaction) or not isinstance(tag, str):
            return
        del owner.timers[tag]
        if isinstance(owner, Registration):
            self._on_registration_timer(owner, now)
        elif isinstance(owner, UaCall):
            if tag in ("2xx", "no_ack"):
                self._on_2xx_timer(owner, tag, now)
            elif tag == "cancel" and owner.state is CallState.CALLING:
                # §9.1: no final response 64*T1 after CANCEL: consider the INVITE cancelled.
                self._end_call(owner, "cancelled", False, None)
