"""Call flows: the operator's YAML language, its checker, and the interpreter that runs it.

``load_flow(path)`` gives a checked, immutable ``Flow``; ``Interpreter(flow, port).run()`` drives a
call through it over any ``CallPort`` (the SIP server's calls, ``ivr chat``, tests).

The names below are loaded when first used, so importing a light module of the package (hours,
templates, matching) does not load the validator with jsonschema and YAML.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.flow.model import Flow, FlowError, FlowInvalid
    from ivr.flow.validate import check_file, load_flow

_HOMES = {
    "Flow": "ivr.flow.model",
    "FlowError": "ivr.flow.model",
    "FlowInvalid": "ivr.flow.model",
    "check_file": "ivr.flow.validate",
    "load_flow": "ivr.flow.validate",
}

__all__ = ["Flow", "FlowError", "FlowInvalid", "check_file", "load_flow"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'ivr.flow' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
