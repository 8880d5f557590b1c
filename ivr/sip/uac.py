"""The UAC half of the user agent core (RFC 3261 §8.1, §9.1, §13.2, §14.1; RFC 3515 REFER).

Outgoing INVITEs, their CANCEL, the ACK for a 2xx (built here from the dialog, with a new branch,
§13.2.2.4; the ACK for a non-2xx belongs to the transaction), re-INVITE, REFER and INFO.
"""

from __future__ import annotations

from ivr.sip.dialog import Dialog, uri_address
from ivr.sip.events import (
    MessageDropped,
    OutgoingAnswered,
    OutgoingFailed,
    OutgoingProgress,
    ReferResult,
    ReInviteAnswered,
)
from ivr.sip.message import Headers, SipRequest, SipResponse, new_tag, parse_cseq
from ivr.sip.registration import digest_authorization
from ivr.sip.transaction import ClientTransaction
from ivr.sip.uacore import Addr, CallInput, CallState, CoreBase, UaCall
from ivr.sip.uri import format_host, parse_uri

DTMF_SIGNALS = frozenset("0123456789*#ABCD")


class UacMixin(CoreBase):
    # --- INVITE ---------------------------------------------------------------------------

    def invite(
        self,
        target_uri: str,
        sdp: bytes,
        now: float,
        from_user: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        proxy: Addr | None = None,
    ) -> str:
        """Place a call (§13.2.1); returns its Call-ID. Raises SipParseError for a bad target."""
        parse_uri(target_uri)
        c = self.config
        call_id = c.call_id_factory(c.host)
        local_tag = new_tag()
        user = from_user or c.user
        display = f'"{c.display_name}" ' if c.display_name else ""
        h = Headers()
        h.add("Via", self._via())
        if proxy is not None:
            # An outbound proxy as a pre-existing route set (§8.1.2), loose routing.
            h.add("Route", f"<sip:{format_host(proxy[0])}:{proxy[1]};lr>")
        h.add("Max-Forwards", "70")
        h.add("From", f"{display}<sip:{user}@{format_host(c.host)}:{c.port}>;tag={local_tag}")
        h.add("To", f"<{target_uri}>")
        h.add("Call-ID", call_id)
        h.add("CSeq", "1 INVITE")
        h.add("Contact", self._contact(user))
        h.add("Allow", ", ".join(c.allowed_methods))
        h.add("User-Agent", c.user_agent)
        for name, value in headers or ():
            h.add(name, value)
        if sdp:
            h.add("Content-Type", "application/sdp")
        request = SipRequest("INVITE", target_uri, h, sdp)
        addr = proxy or uri_address(target_uri)
        call = UaCall(call_id, False, CallState.CALLING, request, local_tag, addr, proxy=proxy)
        self._calls[call_id] = call
        call.invite_client_tx = self._start_client_tx(request, addr, now, "invite", call_id)
        return call_id

    def _on_invite_response(
        self, call: UaCall, tx: ClientTransaction, response: SipResponse, now: float
    ) -> None:
        if call.invite_client_tx is not tx:
            return
        status = response.status
        if status < 200:
            call.got_provisional = True
            if call.cancel_wanted and not call.cancel_sent:
                self._send_cancel(call, now)
            self._emit(OutgoingProgress(call.call_id, status, response.body or None))
        elif status < 300:
            dialog = Dialog.for_uac(call.invite, response)
            call.dialog = dialog
            self._send_2xx_ack(tx, dialog, call.invite, now)
            if call.cancel_wanted:
                # §9.1/§15: the 2xx crossed our CANCEL; the call exists now, so end it with BYE.
                self._send_bye(call, now)
                self._end_call(call, "cancelled", False, status)
                return
            call.advance(CallInput.RECV_2XX)
            self._emit(OutgoingAnswered(call.call_id, response.body))
        else:
            if status in (401, 407) and not call.auth_tried and not call.cancel_wanted:
                if self._retry_with_credentials(call, response, now):
                    return
            if call.cancel_wanted:
                self._end_call(call, "cancelled", False, status)
            else:
                self._drop_call(call)
                self._emit(OutgoingFailed(call.call_id, status, response.reason))

    def _send_2xx_ack(self, tx: ClientTransaction, dialog: Dialog, invite: SipRequest, now: float) -> None:
        # §13.2.2.4: the ACK for a 2xx is the UA core's, with the INVITE's CSeq and a new branch.
        cseq = parse_cseq(invite.headers.get("CSeq") or "")[0]
        ack = dialog.create_ack(cseq, self._via())
        data = bytes(ack)
        addr = dialog.next_hop()
        self._acks[tx.key] = (data, addr)
        self._send(data, addr)

    def _retry_with_credentials(self, call: UaCall, response: SipResponse, now: float) -> bool:
        c = self.config
        if c.auth_username is None or c.auth_password is None:
            return False
        auth = digest_authorization(response, call.invite, c.auth_username, c.auth_password)
        if auth is None:
            return False
        call.auth_tried = True
        # §22.2: same Call-ID, From tag and To, next CSeq, new branch, credentials added.
        old = call.invite
        h = old.headers.copy()
        h.set("Via", self._via())
        number = parse_cseq(h.get("CSeq") or "")[0] + 1
        h.set("CSeq", f"{number} INVITE")
        h.remove("Authorization")
        h.remove("Proxy-Authorization")
        h.add(auth[0], auth[1])
        call.invite = SipRequest("INVITE", old.uri, h, old.body)
        call.got_provisional = False
        call.invite_client_tx = self._start_client_tx(
            call.invite, call.remote_addr, now, "invite", call.call_id
        )
        return True

    def _cancel_call(self, call: UaCall, now: float) -> None:
        """§9.1: CANCEL an unanswered INVITE, but only once a provisional response has arrived."""
        if call.cancel_wanted:
            return
        call.cancel_wanted = True
        if call.got_provisional:
            self._send_cancel(call, now)
        # §9.1: with no final response 64*T1 after the CANCEL, consider the INVITE cancelled.
        self._set_timer(call, "cancel", now + 64 * self.values.t1)

    def _send_cancel(self, call: UaCall, now: float) -> None:
        call.cancel_sent = True
        invite = call.invite
        ih = invite.headers
        h = Headers()
        h.add("Via", ih.get_all("Via")[0])  # same branch as the INVITE (§9.1)
        for route in ih.get_all("Route"):
            h.add("Route", route)
        h.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            h.add(name, ih.get(name) or "")
        h.add("CSeq", f"{parse_cseq(ih.get('CSeq') or '')[0]} CANCEL")
        h.add("User-Agent", self.config.user_agent)
        request = SipRequest("CANCEL", invite.uri, h)
        self._start_client_tx(request, call.remote_addr, now, "cancel", call.call_id)

    def _on_invite_timeout(self, call: UaCall, tx: ClientTransaction) -> None:
        if call.invite_client_tx is not tx:
            return
        if call.cancel_wanted:
            self._end_call(call, "cancelled", False, 408)
        else:
            self._drop_call(call)
            self._emit(OutgoingFailed(call.call_id, 408, "Request Timeout"))

    # --- re-INVITE (§14.1) ----------------------------------------------------------------

    def send_reinvite(self, call_id: str, sdp: bytes, now: float) -> bool:
        """Send a re-INVITE with a new offer; False if the call cannot take one now (§14.1)."""
        call = self._calls.get(call_id)
        if (
            call is None
            or call.state is not CallState.CONFIRMED
            or call.reinvite_client_tx is not None
            or call.reinvite_server_tx is not None
        ):
            return False
        call.reinvite_client_tx = self._in_dialog(
            call, "INVITE", now, body=sdp, content_type="application/sdp", purpose="reinvite"
        )
        return True

    def _on_reinvite_response(
        self, call: UaCall, tx: ClientTransaction, response: SipResponse, now: float
    ) -> None:
        if call.reinvite_client_tx is not tx or response.status < 200 or call.dialog is None:
            return
        call.reinvite_client_tx = None
        if response.status < 300:
            call.dialog.refresh_target(response)
            self._send_2xx_ack(tx, call.dialog, tx.request, now)
            self._emit(ReInviteAnswered(call.call_id, response.status, response.body or None))
        else:
            self._emit(ReInviteAnswered(call.call_id, response.status, None))

    # --- REFER, INFO ----------------------------------------------------------------------

    def refer(self, call_id: str, target_uri: str, now: float) -> bool:
        """Blind transfer (RFC 3515): ask the peer to call `target_uri`; progress as ReferResult."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.CONFIRMED or call.dialog is None:
            return False
        parse_uri(target_uri)
        referred_by = call.dialog.local_party.split(";tag=", 1)[0]
        extra = [("Refer-To", f"<{target_uri}>"), ("Referred-By", referred_by)]
        self._in_dialog(call, "REFER", now, extra=extra, purpose="refer")
        return True

    def send_info_dtmf(self, call_id: str, digit: str, now: float, duration_ms: int = 160) -> bool:
        """One DTMF digit as INFO application/dtmf-relay (a de facto format, not an RFC)."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.CONFIRMED or digit not in DTMF_SIGNALS or not digit:
            return False
        body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
        self._in_dialog(call, "INFO", now, body=body, content_type="application/dtmf-relay")
        return True

    # --- dispatch of client transaction results -------------------------------------------

    def _on_client_result(self, tx: ClientTransaction, response: SipResponse | None, now: float) -> None:
        """A response passed up by a client transaction, or its timeout (response None)."""
        purpose, owner = self._client_owner.get(tx.key, ("", ""))
        if response is not None and 200 <= response.status < 300 and tx.key in self._acks:
            data, addr = self._acks[tx.key]
            self._send(data, addr)  # §13.2.2.4: a retransmitted 2xx is ACKed again
            return
        call = self._calls.get(owner)
        if purpose in ("invite", "reinvite", "refer") and call is None:
            if response is not None and purpose == "invite" and 200 <= response.status < 300:
                self.dropped += 1
                self._emit(MessageDropped("2xx for a call already gone"))
            return
        if call is None:
            return
        if purpose == "invite":
            if response is None:
                self._on_invite_timeout(call, tx)
            else:
                self._on_invite_response(call, tx, response, now)
        elif purpose == "reinvite":
            if response is None:
                call.reinvite_client_tx = None
                self._emit(ReInviteAnswered(call.call_id, 408, None))
            else:
                self._on_reinvite_response(call, tx, response, now)
        elif purpose == "refer":
            status = 408 if response is None else response.status
            if status >= 200:
                self._emit(ReferResult(call.call_id, status, status >= 300))
