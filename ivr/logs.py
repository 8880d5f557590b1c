"""Structured logging: one configuration for the whole process.

Every line carries the call id when one is bound (``log.bind(call_id=...)``), so a single
call can be followed through SIP, media and flow with one grep.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

LogFormat = Literal["console", "json"]


# Phone numbers in log values: runs of 6 or more digits, optionally with a leading +.
_NUMBER = re.compile(r"\+?\d[\d ]{4,}\d")


_NOT_NUMBERS = frozenset({"timestamp", "call_id"})  # ids may hold digit runs; they must stay greppable


def redact_number(match: re.Match[str]) -> str:
    """'+4930123456' -> '+49******56': enough to tell calls apart, not enough to call anyone."""
    digits = match.group(0)
    keep_head = 3 if digits.startswith("+") else 2
    return digits[:keep_head] + "*" * (len(digits) - keep_head - 2) + digits[-2:]


def redact_numbers(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask phone numbers in every string value (privacy in shared logs)."""
    for key, value in event.items():
        if isinstance(value, str) and key not in _NOT_NUMBERS:
            event[key] = _NUMBER.sub(redact_number, value)
    return event


def configure_logging(level: str = "info", fmt: LogFormat = "console", redact: bool = False) -> None:
    """Route structlog to stderr, as JSON lines for machines or aligned text for people."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    if redact:
        processors.append(redact_numbers)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write per line: worker processes share stderr, and print() writes the line and its
        # newline separately, which lets lines of two processes run together.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: object) -> structlog.typing.FilteringBoundLogger:
    # Initial values keep the logger lazy: binding now would freeze the configuration in force
    # at import time, before ``configure_logging`` ran.
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("ivr", **bound)
    return logger
