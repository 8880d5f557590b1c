"""``ivr graph FLOW``: the flow as a diagram, in Mermaid or Graphviz DOT (SVG/PNG through ``dot``).

Both formats are drawn from the same list of labelled edges, so they always agree. Sub-flows are
drawn as clusters; the human fast path, which works from every step, is one dashed edge from an
"any step" node, instead of an arrow from every box. Each kind gives its shapes and the labelled
ways out of its steps (``StepKind.exits``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ivr.flow import model as m
from ivr.flow.steps import registry
from ivr.flow.steps.kind import Exit


@dataclass(frozen=True)
class Edge:
    source: str  # node ids: "scope.step" or "step" for the main flow
    target: str
    label: str
    dashed: bool = False


def node_id(scope: str, step: str) -> str:
    # Prefixed: Mermaid reserves words such as "end" and "graph" that make fine step names.
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", f"{scope}__{step}" if scope else step)


def edges(flow: m.Flow) -> list[Edge]:
    found: list[Edge] = []
    for scope in flow.scopes():
        for step in scope.steps.values():
            for out in [Exit(step.next), *registry.kind_of(step).exits(step, flow)]:
                if out.to is None:
                    continue
                # A reference outside the step's scope is an escalation to the main flow.
                into = (
                    out.enters if out.enters is not None else scope.name if out.to.name in scope.steps else ""
                )
                found.append(
                    Edge(node_id(scope.name, step.name), node_id(into, out.to.name), out.label, out.dashed)
                )
    human = flow.settings.human
    if human is not None:
        label = " or ".join(
            x for x in (human.key and f"key {human.key}", human.phrases and "'" + human.phrases[0] + "'") if x
        )
        found.append(Edge("ANY", node_id("", human.target.name), label, True))
    return found


def _label(step: m.Step) -> str:
    return f"{step.name}\\n({step.kind})"


def mermaid(flow: m.Flow) -> str:
    lines = ["flowchart TD"]
    start = node_id("", flow.main.start.name)
    lines.append(f"  START(((start))) --> {start}")
    for scope in flow.scopes():
        if scope.name:
            lines.append(f"  subgraph {node_id('', scope.name)}[sub-flow {scope.name}]")
        for step in scope.steps.values():
            text = _mermaid_text(f"{step.name} ({step.kind})")
            nid = node_id(scope.name, step.name)
            shape = registry.kind_of(step).mermaid_shape
            lines.append(f'  {nid}{shape[0]}"{text}"{shape[1]}')
        if scope.name:
            lines.append("  end")
    if flow.settings.human is not None:
        lines.append('  ANY(["any step"])')
    for edge in edges(flow):
        arrow = "-.->" if edge.dashed else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {edge.source} {arrow}{label} {edge.target}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def dot(flow: m.Flow) -> str:
    lines = [
        f'digraph "{flow.name}" {{',
        "  rankdir=TB;",
        '  node [shape=box, fontname="sans-serif"];',
        '  edge [fontname="sans-serif", fontsize=10];',
        '  START [shape=circle, label="start"];',
        f"  START -> {node_id('', flow.main.start.name)};",
    ]
    for scope in flow.scopes():
        indent = "  "
        if scope.name:
            lines.append(f'  subgraph "cluster_{scope.name}" {{ label="sub-flow {scope.name}";')
            indent = "    "
        for step in scope.steps.values():
            shape = registry.kind_of(step).dot_shape
            lines.append(f'{indent}{node_id(scope.name, step.name)} [label="{_label(step)}", shape={shape}];')
        if scope.name:
            lines.append("  }")
    if flow.settings.human is not None:
        lines.append('  ANY [label="any step", shape=plaintext];')
    for edge in edges(flow):
        attrs = [f'label="{_dot_text(edge.label)}"'] if edge.label else []
        if edge.dashed:
            attrs.append("style=dashed")
        lines.append(f"  {edge.source} -> {edge.target}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render(flow: m.Flow, fmt: str, output: Path | None = None) -> str | bytes:
    """``mermaid`` or ``dot`` as text; ``svg``/``png`` through Graphviz's ``dot`` when installed."""
    if fmt == "mermaid":
        return mermaid(flow)
    if fmt == "dot":
        return dot(flow)
    if fmt not in ("svg", "png"):
        raise ValueError(f"unknown format {fmt!r}: use mermaid, dot, svg or png")
    binary = shutil.which("dot")
    if binary is None:
        raise RuntimeError(
            "Graphviz is not installed (Debian: apt-get install graphviz); use --format mermaid or dot"
        )
    done = subprocess.run(
        [binary, f"-T{fmt}"], input=dot(flow).encode(), capture_output=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
