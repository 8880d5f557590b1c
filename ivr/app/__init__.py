"""The application layer: the one package that wires call, flow, speech, handoff and store.

Everything below it imports downwards only; the pieces meet here:

- ``call_port``: the flow interpreter's ``CallPort`` over a SIP ``Call`` (prompts, keys, speech);
- ``flow_application``: what ``ivr serve`` runs for each call (the YAML flow by number dialled,
  call records, live calls for supervisors);
- ``prompt_rendering``: every static prompt of a flow, rendered ahead of calls (``ivr prompts``);
- ``sip_conversation_tests``: ``ivr test --sip``, the conversation tests as real calls;
- ``handoff_adapters``: the handoff's ports (dialer, call legs) over the engine, and the flow's
  transfer and callback handlers that hand it the flow's call;
- ``caller`` and ``demo``: the project's own SIP caller (``ivr call``) and ``ivr demo``.

``ivr.cli`` is the entry point above it; ``ivr.ops`` (HTTP API, live view, metrics) reads it.
"""
