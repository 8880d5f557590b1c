"""Call flows: the operator's YAML language, its checker, and the interpreter that runs it.

``load_flow(path)`` gives a checked, immutable ``Flow``; ``Interpreter(flow, port).run()`` drives a
call through it over any ``CallPort`` (the SIP server's calls, ``ivr chat``, tests).
"""

from ivr.flow.model import Flow, FlowError, FlowInvalid
from ivr.flow.validate import check_file, load_flow

__all__ = ["Flow", "FlowError", "FlowInvalid", "check_file", "load_flow"]
