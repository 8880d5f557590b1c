"""Step kinds: each kind of flow step defined in one place, and the registry of them.

- ``kind``: what a kind defines (``StepKind``) and what it may use of the builder, the validator's
  flow and the running interpreter (``FlowBuilder``, ``CallRuntime``);
- ``registry``: YAML key -> kind; the builder, validator, interpreter and graph dispatch through it;
- ``flow_schema``: the flow's JSON Schema, generated from the kinds' fragments, and the check of a
  document against it; ``python -m ivr.flow.steps.schema`` writes it to ``schema/flow.schema.json``;
- the kinds, by family: ``control`` (say, set, branch, goto, call, return), ``prompting`` (menu,
  ask, collect), ``lookup``, ``ending`` (transfer, callback, hangup).

A new kind is one module with a ``StepKind`` subclass, registered with ``registry.register``.
"""
