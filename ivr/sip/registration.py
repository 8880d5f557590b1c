"""Registration with a registrar (RFC 3261 §10), with digest authentication (§22).

One `Registration` per address-of-record. The REGISTER requests of one registration share a
Call-ID and From tag and count up their CSeq (§10.2). A 401/407 is answered once per nonce with
credentials from digest.py; a successful binding is refreshed before it expires (§10.2.1), and
`unregister` removes it with Expires: 0 (§10.2.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.sip.digest import DigestError, build_authorization, select_challenge
from ivr.sip.errors import SipParseError
from ivr.sip.events import RegistrationChanged
from ivr.sip.message import Headers, SipRequest, SipResponse, new_tag
from ivr.sip.transaction import ClientTransaction
from ivr.sip.uacore import Addr, CoreBase, Timed, UserAgentConfig
from ivr.sip.uri import format_host, parse_name_addr

MIN_REFRESH = 5.0  # never refresh sooner than this after a success


def digest_authorization(
    response: SipResponse, request: SipRequest, username: str, password: str
) -> tuple[str, str] | None:
    """(header name, value) answering the strongest challenge of a 401/407 (§22.2, §22.3)."""
    if response.status == 407:
        name, values = "Proxy-Authorization", response.headers.get_all("Proxy-Authenticate")
    else:
        name, values = "Authorization", response.headers.get_all("WWW-Authenticate")
    challenge = select_challenge(values)
    if challenge is None:
        return None
    try:
        return name, build_authorization(challenge, request.method, request.uri, username, password,
                                         body=request.body)  # fmt: skip
    except DigestError:
        return None


@dataclass(eq=False)
class Registration(Timed):
    registrar: Addr = ("", 0)
    user: str = ""
    domain: str = ""
    password: str = ""
    expires: int = 3600
    call_id: str = ""
    from_tag: str = ""
    cseq: int = 0
    registered: bool = False
    auth_tries: int = 0
    removing: bool = False

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"


class RegistrationMixin(CoreBase):
    def __init__(self, config: UserAgentConfig) -> None:
        super().__init__(config)
        self._regs: dict[str, Registration] = {}

    def _registrations(self) -> dict[str, Registration]:
        return self._regs

    def register(
        self, registrar: Addr, aor_user: str, domain: str, password: str, expires: int, now: float
    ) -> str:
        """Register `sip:aor_user@domain` at `registrar`; returns the AOR. Outcome: RegistrationChanged."""
        reg = Registration(
            registrar=registrar, user=aor_user, domain=domain, password=password, expires=expires
        )
        reg.call_id = self.config.call_id_factory(self.config.host)
        reg.from_tag = new_tag()
        self._registrations()[reg.aor] = reg
        self._send_register(reg, now, None)
        return reg.aor

    def unregister(self, aor: str, now: float) -> None:
        """Remove our binding (§10.2.2: Expires 0); RegistrationChanged(registered=False) follows."""
        reg = self._registrations().get(aor)
        if reg is None:
            return
        reg.removing = True
        reg.timers.clear()
        reg.auth_tries = 0
        self._send_register(reg, now, None)

    def _send_register(self, reg: Registration, now: float, auth: tuple[str, str] | None) -> None:
        reg.cseq += 1
        h = Headers()
        h.add("Via", self._via())
        h.add("Max-Forwards", "70")
        h.add("From", f"<{reg.aor}>;tag={reg.from_tag}")
        h.add("To", f"<{reg.aor}>")
        h.add("Call-ID", reg.call_id)
        h.add("CSeq", f"{reg.cseq} REGISTER")
        h.add("Contact", self._contact(reg.user))
        h.add("Expires", "0" if reg.removing else str(reg.expires))
        h.add("User-Agent", self.config.user_agent)
        if auth is not None:
            h.add(auth[0], auth[1])
        request = SipRequest("REGISTER", f"sip:{format_host(reg.domain)}", h)
        self._start_client_tx(request, reg.registrar, now, "register", reg.aor)

    def _granted_expires(self, reg: Registration, response: SipResponse) -> int:
        # §10.2.4: the registrar's answer is the Contact's expires param, else the Expires header.
        ours = f"{format_host(self.config.host)}:{self.config.port}"
        for value in response.headers.get_all("Contact"):
            try:
                contact = parse_name_addr(value)
            except SipParseError:
                continue
            if f"{format_host(contact.uri.host)}:{contact.uri.port or 5060}" == ours:
                expires = contact.params.get("expires")
                if expires and expires.isascii() and expires.isdigit():
                    return int(expires)
        header = response.headers.get("Expires")
        if header and header.isascii() and header.isdigit():
            return int(header)
        return reg.expires

    def _on_register_result(
        self, tx: ClientTransaction, aor: str, response: SipResponse | None, now: float
    ) -> None:
        reg = self._registrations().get(aor)
        if reg is None or (response is not None and response.status < 200):
            return
        status = 408 if response is None else response.status
        if response is not None and status in (401, 407) and reg.auth_tries < 2:
            auth = digest_authorization(response, tx.request, reg.user, reg.password)
            if auth is not None:
                reg.auth_tries += 1
                self._send_register(reg, now, auth)
                return
        reg.auth_tries = 0
        if reg.removing:
            del self._registrations()[aor]
            reg.timers.clear()
            self._emit(RegistrationChanged(aor, False, 0, status))
            return
        if response is not None and 200 <= status < 300:
            granted = self._granted_expires(reg, response)
            reg.registered = granted > 0
            # §10.2.1: refresh before expiry; halfway for short bindings, 30 s early for long ones.
            refresh = max(MIN_REFRESH, granted - 30 if granted > 120 else granted / 2)
            if granted > 0:
                self._set_timer(reg, "refresh", now + refresh)
            self._emit(RegistrationChanged(aor, reg.registered, granted, status))
            return
        if response is not None and status == 423:
            # §10.2.8: Interval Too Brief: retry with the registrar's Min-Expires.
            minimum = response.headers.get("Min-Expires")
            if minimum and minimum.isascii() and minimum.isdigit() and int(minimum) > reg.expires:
                reg.expires = int(minimum)
                self._send_register(reg, now, None)
                return
        reg.registered = False
        self._emit(RegistrationChanged(aor, False, 0, status))

    def _on_registration_timer(self, reg: Registration, now: float) -> None:
        if not reg.removing and reg.aor in self._registrations():
            self._send_register(reg, now, None)
