"""Structured logging: one configuration for the whole process.

Every line carries the call id when one is bound (``log.bind(call_id=...)``), so a single
call can be followed through SIP, media and flow with one grep.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

LogFormat = Literal["console", "json"]


def configure_logging(level: str = "info", fmt: LogFormat = "console") -> None:
    """Route structlog to stderr, as JSON lines for machines or aligned text for people."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
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
