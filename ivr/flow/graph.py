"""``ivr graph FLOW``: the flow as a diagram, in Mermaid or Graphviz DOT (SVG/PNG through ``dot``).

Both formats are drawn from the same list of labelled edges, so they always agree. Sub-flows are
drawn as clusters; the human fast path, which works from every step, is one dashed edge from an
"any step" node, instead of an arrow from every box.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ivr.flow import model as m

_SHAPES = {
    "menu": "diamond",
    "ask": "diamond",
    "collect": "parallelogram",
    "branch": "diamond",
    "transfer": "box3d",
    "callback": "box3d",
    "hangup": "doublecircle",
}


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

        def target(ref: m.Ref, scope: m.Scope = scope) -> str:
            return node_id(scope.name if ref.name in scope.steps else "", ref.name)

        for step in scope.steps.values():
            src = node_id(scope.name, step.name)

            def add(ref: m.Ref | None, label: str, dashed: bool = False, src: str = src) -> None:
                if ref is not None:
                    found.append(Edge(src, target(ref), label, dashed))

            add(step.next, "")
            if isinstance(step, m.MenuStep):
                for choice in step.choices:
                    words = "/".join(choice.phrases[:2])
                    add(choice.next, " ".join(x for x in (choice.key and f"key {choice.key}", words) if x))
            if isinstance(step, m.MenuStep | m.AskStep | m.CollectStep):
                add(step.retries.escalate, f"after {step.retries.attempts} tries", dashed=True)
            if isinstance(step, m.AskStep):
                for intent, ref in step.routes.items():
                    add(ref, f"intent {intent}")
            if isinstance(step, m.BranchStep):
                for case in step.cases:
                    add(case.then, case.condition.source)
                add(step.otherwise, "else")
            if isinstance(step, m.LookupStep):
                add(step.found, "found")
                add(step.not_found, "not found")
                add(step.fallback, "webhook failed", dashed=True)
            if isinstance(step, m.TransferStep):
                add(step.no_agent, "no agent")
            if isinstance(step, m.CallbackStep):
                add(step.booked, "booked")
                add(step.declined, "declined")
                add(step.failed, "failed")
            if isinstance(step, m.GotoStep):
                add(step.target, "")
            if isinstance(step, m.CallStep) and step.subflow.name in flow.subflows:
                sub = flow.subflows[step.subflow.name]
                found.append(Edge(src, node_id(sub.name, sub.start.name), "call", True))
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
            shape = {
                "menu": ("{", "}"),
                "ask": ("{", "}"),
                "branch": ("{", "}"),
                "hangup": ("([", "])"),
                "transfer": ("[[", "]]"),
                "callback": ("[[", "]]"),
            }.get(step.kind, ("[", "]"))
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
            shape = _SHAPES.get(step.kind, "box")
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
