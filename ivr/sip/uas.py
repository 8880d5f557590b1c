"""The UAS half of the user agent core (RFC 3261 §8.2, §9.2, §13.3, §14.2, §15.1.2).

Requests that match no server transaction arrive here, pass the §8.2 checks in their order
(method, headers, extensions, content), and are dispatched: out-of-dialog INVITE and OPTIONS, or
in-dialog requests matched to a dialog by Call-ID and tags. Answers go back through the server
transaction; the 2xx to an INVITE is retransmitted from here until the ACK (§13.3.1.4).
"""

from __future__ import annotations

from ivr.sip.dialog import Dialog, DialogState
from ivr.sip.errors import SipParseError
from ivr.sip.events import (
    CallCancelled,
    CallConfirmed,
    IncomingCall,
    InfoReceived,
    MessageDropped,
    ReferResult,
    ReInviteReceived,
)
from ivr.sip.message import SipRequest, new_tag, parse_cseq, parse_via
from ivr.sip.transaction import ServerTransaction, State, server_key
from ivr.sip.uacore import KNOWN_METHODS, Addr, CallInput, CallState, CoreBase, UaCall, arrived_reliably
from ivr.sip.uri import parse_name_addr


def _tag(value: str | None) -> str | None:
    try:
        return parse_name_addr(value or "").tag
    except SipParseError:
        return None


class UasMixin(CoreBase):
    # --- entry point ----------------------------------------------------------------------

    def _on_request(self, request: SipRequest, addr: Addr, now: float) -> None:
        self._stamp_via(request, addr)
        if request.method == "ACK":
            self._on_ack(request, now)
            return
        tx = self._server_tx.get(server_key(request))
        if tx is not None:
            # §17.2.3: a retransmission; the transaction absorbs it or resends its last response.
            tx.receive_request(request, now)
            self._flush(tx)
            return
        tx = self._new_server_tx(request, addr, now)
        if self._refuse(request, tx, now):
            return
        method = request.method
        if method == "CANCEL":
            self._on_cancel(request, tx, now)
            return
        if _tag(request.headers.get("To")) is not None:
            self._on_in_dialog(request, tx, now)
        elif method == "INVITE":
            self._on_invite(request, tx, addr, now)
        elif method == "OPTIONS":
            self._answer_options(tx, now)
        else:
            # §12.2.2-style: BYE, INFO, NOTIFY... outside any dialog we know of.
            self._respond(tx, 481, now)

    def _stamp_via(self, request: SipRequest, addr: Addr) -> None:
        """§18.2.1 and RFC 3581 §4: note where the request really came from in the top Via."""
        vias = request.headers.get_all("Via")
        via = parse_via(vias[0])
        changed = False
        if via.host != addr[0]:
            via.params["received"] = addr[0]
            changed = True
        if "rport" in via.params and not via.params["rport"]:
            via.params["rport"] = str(addr[1])
            via.params.setdefault("received", addr[0])
            changed = True
        if changed:
            request.headers.set("Via", ", ".join([str(via), *vias[1:]]))

    def _refuse(self, request: SipRequest, tx: ServerTransaction, now: float) -> bool:
        """The §8.2 checks, in the RFC's order; True when a final response has been sent."""
        method = request.method
        h = request.headers
        allow = ", ".join(self.config.allowed_methods)
        if h.get("Max-Forwards") == "0" and method != "OPTIONS":
            self._respond(tx, 483, now)
            return True
        if method not in KNOWN_METHODS:
            self._respond(tx, 501, now, extra=[("Allow", allow)])  # §8.2.1
            return True
        if method not in self.config.allowed_methods:
            self._respond(tx, 405, now, extra=[("Allow", allow)])  # §8.2.1
            return True
        if method != "CANCEL":
            unsupported = [tag for tag in h.get_all("Require") if tag not in self.config.supported]
            if unsupported:
                self._respond(tx, 420, now, extra=[("Unsupported", ", ".join(unsupported))])  # §8.2.2.3
                return True
        if method == "INVITE" and request.body:
            ctype = (h.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype != "application/sdp":
                self._respond(tx, 415, now, extra=[("Accept", "application/sdp")])  # §8.2.3
                return True
        if _tag(h.get("To")) is None and self._merged(request, tx):
            self._respond(tx, 482, now)  # §8.2.2.2
            return True
        return False

    def _merged(self, request: SipRequest, tx: ServerTransaction) -> bool:
        """§8.2.2.2: same From tag, Call-ID and CSeq as a live transaction, different branch."""
        key = (request.headers.get("Call-ID") or "", _tag(request.headers.get("From")) or "",
               request.headers.get("CSeq") or "")  # fmt: skip
        first = self._recent.get(key)
        if first is not None and not first.terminated and first.key != tx.key:
            return True
        self._recent[key] = tx
        if len(self._recent) > 2 * len(self._server_tx) + 256:
            self._recent = {k: t for k, t in self._recent.items() if not t.terminated}
        return False

    # --- out of dialog --------------------------------------------------------------------

    def _answer_options(self, tx: ServerTransaction, now: float) -> None:
        # §11.2: say what we can do.
        self._respond(
            tx,
            200,
            now,
            extra=[
                ("Allow", ", ".join(self.config.allowed_methods)),
                ("Accept", "application/sdp"),
                ("Supported", ", ".join(self.config.supported)),
            ],
        )

    def _on_invite(self, request: SipRequest, tx: ServerTransaction, addr: Addr, now: float) -> None:
        call_id = request.headers.get("Call-ID") or ""
        # §17.2.1: 100 Trying at once, so the caller stops retransmitting (Timer A).
        self._respond(tx, 100, now)
        if self.closing or (self.config.max_calls is not None and len(self._calls) >= self.config.max_calls):
            self._respond(tx, 503, now, extra=[("Retry-After", "5")])
            return
        if self._source_is_full(addr):
            self._respond(
                tx, 503, now, reason="Too Many Calls From This Address", extra=[("Retry-After", "5")]
            )
            return
        if call_id in self._calls:
            self._respond(tx, 482, now)  # an INVITE for a Call-ID we already hold, not matching it
            return
        local_tag = new_tag()
        try:
            dialog = Dialog.for_uas(request, local_tag, DialogState.EARLY)
        except SipParseError as exc:
            self._respond(tx, 400, now, reason=exc.reason[:100])
            return
        call = UaCall(call_id, True, CallState.INCOMING, request, local_tag, tx.addr, dialog=dialog,
                    invite_server_tx=tx)  # fmt: skip
        if arrived_reliably(request):
            call.flow = addr
        self._calls[call_id] = call
        self._emit(IncomingCall(call_id, request, request.body or None, addr))

    def _source_is_full(self, addr: Addr) -> bool:
        limit = self.config.max_calls_per_source
        if limit is None:
            return False
        held = sum(1 for call in self._calls.values() if call.uas and call.remote_addr[0] == addr[0])
        return held >= limit

    def _on_cancel(self, request: SipRequest, tx: ServerTransaction, now: float) -> None:
        """§9.2: 200 to the CANCEL, then 487 to the INVITE if it has no final response yet."""
        invite_tx = self._server_tx.get(server_key(request, method="INVITE"))
        if invite_tx is None:
            self._respond(tx, 481, now)
            return
        call = self._calls.get(request.headers.get("Call-ID") or "")
        tag = call.local_tag if call is not None else None
        self._respond(tx, 200, now, to_tag=tag)
        if invite_tx.state is not State.PROCEEDING:
            return  # the final response already went out; the CANCEL has no effect
        self._respond(invite_tx, 487, now, to_tag=tag)
        if call is not None and call.invite_server_tx is invite_tx:
            self._drop_call(call)
            self._emit(CallCancelled(call.call_id))
        elif call is not None and call.reinvite_server_tx is invite_tx:
            call.reinvite_server_tx = None

    # --- in dialog (§12.2.2) --------------------------------------------------------------

    def _on_in_dialog(self, request: SipRequest, tx: ServerTransaction, now: float) -> None:
        call = self._calls.get(request.headers.get("Call-ID") or "")
        dialog = call.dialog if call is not None else None
        if call is None or dialog is None or not dialog.matches(request):
            self._respond(tx, 481, now)
            return
        error = dialog.check_request(request)
        if error is not None:
            self._respond(tx, error[0], now, error[1], to_tag=call.local_tag)
            return
        method = request.method
        if method == "BYE":
            self._on_bye(call, tx, now)
        elif method == "INVITE":
            self._on_reinvite(call, request, tx, now)
        elif method == "INFO":
            self._respond(tx, 200, now)
            self._emit(InfoReceived(call.call_id, request.headers.get("Content-Type"), request.body))
        elif method == "NOTIFY":
            self._on_notify(call, request, tx, now)
        elif method == "OPTIONS":
            self._answer_options(tx, now)
        else:
            self._respond(tx, 501, now, extra=[("Allow", ", ".join(self.config.allowed_methods))])

    def _on_bye(self, call: UaCall, tx: ServerTransaction, now: float) -> None:
        """§15.1.2: answer 200, and 487 to any INVITE still pending in this dialog."""
        self._respond(tx, 200, now)
        for pending in (call.invite_server_tx, call.reinvite_server_tx):
            if pending is not None and pending.state is State.PROCEEDING:
                self._respond(pending, 487, now, to_tag=call.local_tag)
        if call.bye_after_ack:
            self._drop_call(call)  # the application already has its CallEnded
        else:
            self._end_call(call, "bye", True, None)

    def _on_reinvite(self, call: UaCall, request: SipRequest, tx: ServerTransaction, now: float) -> None:
        if call.reinvite_client_tx is not None:
            self._respond(tx, 491, now)  # §14.2: glare with our own pending re-INVITE
            return
        if call.state is not CallState.CONFIRMED or call.reinvite_server_tx is not None:
            # §14.2: an INVITE still pending in this dialog (no final response, or no ACK yet).
            self._respond(tx, 500, now, extra=[("Retry-After", "1")])
            return
        self._respond(tx, 100, now)
        call.reinvite_server_tx = tx
        if call.dialog is not None:
            call.dialog.refresh_target(request)
        self._emit(ReInviteReceived(call.call_id, request.body or None))

    def _on_notify(self, call: UaCall, request: SipRequest, tx: ServerTransaction, now: float) -> None:
        """RFC 3515 §2.4.4: progress of our REFER as a message/sipfrag status line."""
        event = (request.headers.get("Event") or "").split(";", 1)[0].strip().lower()
        if event != "refer":
            self._respond(tx, 489, now)  # RFC 6665 §8.3.1: Bad Event
            return
        self._respond(tx, 200, now)
        first = request.body.split(b"\n", 1)[0].decode("utf-8", "replace").split()
        status = int(first[1]) if len(first) >= 2 and first[1].isascii() and first[1].isdigit() else 0
        state = (request.headers.get("Subscription-State") or "").lower()
        final = status >= 200 or state.startswith("terminated")
        self._emit(ReferResult(call.call_id, status, final))

    def _on_ack(self, request: SipRequest, now: float) -> None:
        tx = self._server_tx.get(server_key(request))
        if tx is not None:
            tx.receive_request(request, now)  # ACK for a non-2xx: absorbed by the transaction
            self._flush(tx)
            return
        call = self._calls.get(request.headers.get("Call-ID") or "")
        if call is None or call.dialog is None or not call.dialog.matches(request):
            self.dropped += 1
            self._emit(MessageDropped("ACK matching no transaction or dialog"))
            return
        cseq = parse_cseq(request.headers.get("CSeq") or "")[0]
        if call.ok_data is None or cseq != call.ok_cseq:
            return  # a retransmitted ACK: harmless
        # §13.3.1.4: the ACK stops the 2xx retransmissions.
        call.ok_data = None
        call.timers.pop("2xx", None)
        call.timers.pop("no_ack", None)
        if call.state is CallState.WAITING_ACK:
            call.advance(CallInput.RECV_ACK)
            if call.bye_after_ack:
                self._send_bye(call, now)
                self._drop_call(call)
            else:
                self._emit(CallConfirmed(call.call_id))

    # --- application actions --------------------------------------------------------------

    def send_provisional(self, call_id: str, status: int, now: float, sdp: bytes | None = None) -> None:
        """Send 180/183 (with early media SDP if given) for an incoming call not yet answered."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.INCOMING or call.invite_server_tx is None:
            return
        if not 100 < status < 200:
            raise ValueError(f"not a provisional status: {status}")
        self._respond(call.invite_server_tx, status, now, to_tag=call.local_tag, dialog_forming=True,
                      body=sdp or b"")  # fmt: skip

    def answer(self, call_id: str, sdp: bytes, now: float) -> None:
        """Answer an incoming call with 200 and our SDP; it is retransmitted until the ACK."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.INCOMING or call.invite_server_tx is None:
            return
        tx = call.invite_server_tx
        self._respond(tx, 200, now, to_tag=call.local_tag, dialog_forming=True, body=sdp)
        if call.dialog is not None:
            call.dialog.state = DialogState.CONFIRMED
        call.advance(CallInput.SEND_2XX)
        self._start_2xx_retransmission(call, tx, now)

    def _start_2xx_retransmission(self, call: UaCall, tx: ServerTransaction, now: float) -> None:
        # §13.3.1.4: T1, doubling up to T2, until the ACK; give up after 64*T1.
        call.ok_data = tx.last_response
        call.ok_addr = tx.addr
        call.ok_cseq = parse_cseq(tx.request.headers.get("CSeq") or "")[0]
        call.ok_interval = self.values.t1
        if not self.config.reliable:
            self._set_timer(call, "2xx", now + self.values.t1)
        self._set_timer(call, "no_ack", now + 64 * self.values.t1)

    def reject(self, call_id: str, status: int, now: float, reason: str | None = None) -> None:
        """Refuse an incoming call with a final non-2xx status (486, 603, 480...)."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.INCOMING or call.invite_server_tx is None:
            return
        if status < 300:
            raise ValueError(f"not a rejection status: {status}")
        self._respond(call.invite_server_tx, status, now, reason, to_tag=call.local_tag)
        self._end_call(call, reason or "rejected", False, status)

    def answer_reinvite(self, call_id: str, sdp: bytes | None, now: float) -> None:
        """Accept a re-INVITE with our SDP, or refuse it with 488 when `sdp` is None (§14.2)."""
        call = self._calls.get(call_id)
        if call is None or call.reinvite_server_tx is None:
            return
        tx = call.reinvite_server_tx
        call.reinvite_server_tx = None
        if sdp is None:
            self._respond(tx, 488, now, to_tag=call.local_tag)
            return
        self._respond(tx, 200, now, to_tag=call.local_tag, body=sdp, extra=[("Contact", self._contact())])
        self._start_2xx_retransmission(call, tx, now)

    # --- UAS timers -----------------------------------------------------------------------

    def _on_2xx_timer(self, call: UaCall, name: str, now: float) -> None:
        if name == "2xx" and call.ok_data is not None and call.ok_addr is not None:
            self._send(call.ok_data, call.ok_addr)
            call.ok_interval = min(2 * call.ok_interval, self.values.t2)
            self._set_timer(call, "2xx", now + call.ok_interval)
        elif name == "no_ack":
            # §13.3.1.4: no ACK within 64*T1: confirm the dialog and end it with BYE.
            call.ok_data = None
            call.timers.pop("2xx", None)
            self._send_bye(call, now)
            if call.bye_after_ack:
                self._drop_call(call)
            else:
                self._end_call(call, "no ACK", False, None)
