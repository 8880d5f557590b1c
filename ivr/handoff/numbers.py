"""Callback numbers: E.164 normalisation and the checks that keep the dialer from toll fraud.

A callback makes the IVR place an outgoing call to a number a caller chose. Left unchecked, that is
a way to make us call premium-rate lines or far-away countries on our bill. So the dialer only ever
dials an ``ApprovedNumber``, and only ``approve`` makes one: normalised to E.164 (ITU-T E.164: at
most 15 digits including the country code), long enough to be a subscriber number, not in a
premium-rate or mass-traffic range, in the home country unless international callbacks are allowed,
and matching the flow's ``numbers`` patterns when it has any.

Input comes from two places: the caller ID (``sip:+4930123456@host``, ``tel:+49...``,
``"Anna" <sip:030123456@pbx>``) and digits keyed in by the caller (``030 123456``, ``0049...``).
National numbers get the default country code; the trunk prefix ``0`` is dropped, as dialled
nationally in most of Europe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

RejectReason = Literal["format", "length", "premium", "international", "not_allowed"]

# Ranges no callback may reach by default. Each pattern is matched against the E.164 form.
# +49 900 premium, 137/138 mass-call and televoting, 118 directory enquiries, 190 old premium,
# 1 900/976 NANP premium, 44 9 UK premium and 44 87 UK revenue share, 33 89 French premium,
# 43 9 Austrian value-added.
DEFAULT_BLOCKED: tuple[str, ...] = (
    r"^\+49(900|137|138|118|190)",
    r"^\+1(900|976)",
    r"^\+44(9|87)",
    r"^\+3389",
    r"^\+439",
)

MIN_DIGITS = 7  # country code + the shortest subscriber numbers still in use
MAX_DIGITS = 15  # E.164 §6.1


class NumberRejected(Exception):
    """The number may not be called back; ``reason`` is stable for flows and metrics."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason: RejectReason = reason
        self.message = message


@dataclass(frozen=True)
class NumberPolicy:
    default_country: str = "49"  # country code without '+', for national numbers
    allowed: tuple[str, ...] = ()  # regexes on the E.164 form; empty = any number not blocked
    blocked: tuple[str, ...] = DEFAULT_BLOCKED
    allow_international: bool = False
    _allowed_re: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _blocked_re: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[1-9]\d{0,2}", self.default_country):
            raise ValueError(f"default country code must be 1-3 digits, not {self.default_country!r}")
        try:
            object.__setattr__(self, "_allowed_re", tuple(re.compile(p) for p in self.allowed))
            object.__setattr__(self, "_blocked_re", tuple(re.compile(p) for p in self.blocked))
        except re.error as exc:
            raise ValueError(f"bad number pattern: {exc}") from exc


@dataclass(frozen=True)
class ApprovedNumber:
    """An E.164 number that passed ``approve``. Construct it only through ``approve``."""

    e164: str

    def __str__(self) -> str:
        return self.e164


_URI_USER = re.compile(r"^(?:sips?|tel):([^@;>]+)", re.IGNORECASE)


def caller_id_digits(caller: str) -> str:
    """The number part of a caller ID: a SIP/tel URI, a name-addr, or plain digits."""
    text = caller.strip()
    if "<" in text and ">" in text:
        text = text[text.index("<") + 1 : text.index(">")]
    match = _URI_USER.match(text)
    if match is not None:
        text = match.group(1)
    return text


def normalize(raw: str, default_country: str = "49") -> str:
    """E.164 form ``+<digits>`` of a caller ID or keyed-in number; raises ``NumberRejected``."""
    text = caller_id_digits(raw)
    # Visual separators people and PBXes write: spaces, dashes, dots, slashes, brackets.
    compact = re.sub(r"[\s\-./()]", "", text)
    if not compact:
        raise NumberRejected("format", "no number given")
    if compact.startswith("+"):
        digits = compact[1:]
    elif compact.startswith("00"):
        digits = compact[2:]  # international prefix (ITU-T E.164 Annex, most of the world)
    elif compact.startswith("0"):
        digits = default_country + compact[1:]  # national trunk prefix
    else:
        # Without any prefix, a PBX-style national number without trunk prefix is indistinguishable
        # from an international one without '+'; take it as national, the safer reading.
        digits = default_country + compact
    if not digits.isdigit():
        raise NumberRejected("format", f"{raw!r} has characters that are not digits")
    if digits.startswith("0"):
        raise NumberRejected("format", f"{raw!r} has no valid country code")
    if len(digits) < MIN_DIGITS:
        raise NumberRejected("length", f"{raw!r} is too short for a phone number")
    if len(digits) > MAX_DIGITS:
        raise NumberRejected("length", f"{raw!r} is longer than E.164 allows (15 digits)")
    return "+" + digits


def approve(raw: str, policy: NumberPolicy) -> ApprovedNumber:
    """Normalise and check ``raw``; the only way to get a number the dialer will call."""
    e164 = normalize(raw, policy.default_country)
    for pattern in policy._blocked_re:
        if pattern.search(e164):
            raise NumberRejected("premium", f"{e164} is in a blocked (premium-rate) range")
    if not policy.allow_international and not e164.startswith("+" + policy.default_country):
        raise NumberRejected("international", f"{e164} is outside country +{policy.default_country}")
    if policy._allowed_re and not any(p.search(e164) for p in policy._allowed_re):
        raise NumberRejected("not_allowed", f"{e164} does not match the allowed callback numbers")
    return ApprovedNumber(e164)


def policy_from_flow(patterns: tuple[str, ...], default_country: str = "49") -> NumberPolicy:
    """The policy for a flow's ``callback.numbers`` patterns (``CallbackPolicy.numbers``).

    A flow that explicitly allows numbers of another country (a pattern starting ``^\\+`` with a
    different code) has decided about international callbacks itself, so the home-country rule is
    relaxed; the premium-rate blocks always stay.
    """
    foreign = any(
        (m := re.match(r"^\^?\\?\+(\d{1,3})", p)) is not None and not m.group(1).startswith(default_country)
        for p in patterns
    )
    return NumberPolicy(default_country=default_country, allowed=patterns, allow_international=foreign)
