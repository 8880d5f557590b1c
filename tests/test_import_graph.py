"""The package import graph: one-way layers, sans-IO cores, private names kept at home.

Every module under ``ivr/`` is parsed (not imported): imports inside functions and under
``TYPE_CHECKING`` count as much as those at the top, since a lazy import is a dependency all the
same, and relative imports are resolved. The graph's nodes are the subpackages (``ivr.call``) and
the top-level modules (``ivr.cli``, ``ivr.logs``). Four rules:

- no cycle between packages (the cycle is printed, with the import lines that make it);
- every edge is in ``ALLOWED``, the layering that ``docs/architecture.md`` draws;
- the protocol cores ``ivr.sip`` and ``ivr.media`` import no asyncio, socket, threading or
  selectors: time and bytes are passed in, the shells in ``ivr.net`` and ``ivr.call`` do the I/O;
- no ``_private`` name (or module) is imported from another package.

Each rule has a self-test on made-up module sources that proves it fails when it should, and the
table in ``docs/architecture.md`` must say what ``ALLOWED`` says.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Layers, lowest first. Each package may import the ones listed (and itself), nothing else.
BELOW_APP = {
    "ivr.sip", "ivr.media", "ivr.net", "ivr.call", "ivr.flow", "ivr.speech",
    "ivr.store", "ivr.handoff", "ivr.wording", "ivr.logs",
}  # fmt: skip
ALLOWED: dict[str, set[str]] = {
    "ivr": {"ivr._compiled"},  # the package's __init__ installs the compiled media plane
    "ivr._compiled": set(),
    "ivr.logs": set(),
    "ivr.wording": set(),  # pure text: what the IVR says, in English and German
    "ivr.sip": {"ivr.logs"},
    "ivr.media": {"ivr.logs"},
    "ivr.net": {"ivr.sip", "ivr.media", "ivr.logs"},
    "ivr.call": {"ivr.sip", "ivr.media", "ivr.net", "ivr.logs"},
    "ivr.flow": {"ivr.wording", "ivr.logs"},
    "ivr.speech": {"ivr.media", "ivr.logs"},
    "ivr.store": {"ivr.logs"},
    "ivr.handoff": {"ivr.flow", "ivr.media", "ivr.store", "ivr.wording", "ivr.logs"},
    "ivr.app": BELOW_APP,
    "ivr.ops": BELOW_APP | {"ivr.app"},
    "ivr.cli": BELOW_APP | {"ivr.app", "ivr.ops", "ivr._compiled"},  # the entry point: anything
    "ivr.__main__": {"ivr.cli"},
}

SANS_IO = {"ivr.sip", "ivr.media"}
IO_MODULES = {"asyncio", "socket", "threading", "selectors"}

# Private names imported across packages that are still to go, as (importer, imported module).
PRIVATE_TO_GO: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Import:
    """One imported module (``ivr.flow.port``) or name from it, and where the import is."""

    importer: str  # module name, e.g. "ivr.app.call_port"
    module: str  # "ivr.flow.port", or "asyncio"
    name: str | None  # the name taken by ``from module import name``; None for ``import module``
    line: int

    @property
    def where(self) -> str:
        return f"{self.importer}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(importer: str, source: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every import of one module's source, relative ones resolved against ``importer``."""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(importer, alias.name, None, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                yield Import(importer, module, alias.name, node.lineno)


def _private(segment: str) -> bool:
    return segment.startswith("_") and not (segment.startswith("__") and segment.endswith("__"))


class Graph:
    """The package graph of a set of modules given as ``{module name: source}``."""

    def __init__(self, sources: Mapping[str, str], packages: Iterable[str]) -> None:
        self.modules = set(sources)
        self.packages = set(packages)  # "ivr", "ivr.call", ...: folders, with or without __init__
        self.imports = [
            imp
            for name, source in sorted(sources.items())
            for imp in imports(name, source, is_package=name in self.packages)
        ]
        # node -> imported node -> the import lines, for messages
        self.edges: dict[str, dict[str, list[Import]]] = {}
        for imp in self.imports:
            source_node = self.node_of(imp.importer)
            target = self.node_of(self.target_of(imp))
            if source_node is None or target is None or target in (source_node, "ivr"):
                continue  # "ivr" itself: every module loads the package's __init__ anyway
            self.edges.setdefault(source_node, {}).setdefault(target, []).append(imp)

    def node_of(self, module: str) -> str | None:
        """The graph node of an ``ivr`` module: ``ivr.x`` for a subpackage or a top-level module."""
        parts = module.split(".")
        if parts[0] != "ivr":
            return None
        return ".".join(parts[:2])

    def home_of(self, module: str) -> str:
        """Who a private name belongs to: its subpackage, or ``ivr`` for the top-level modules."""
        node = ".".join(module.split(".")[:2])
        return node if node in self.packages else "ivr"

    def target_of(self, imp: Import) -> str:
        """The module really imported: ``from ivr import cli`` imports ``ivr.cli``, not ``ivr``."""
        candidate = f"{imp.module}.{imp.name}"
        if imp.name is not None and (candidate in self.modules or candidate in self.packages):
            return candidate
        return imp.module

    @classmethod
    def of_tree(cls, root: Path) -> Graph:
        files = sorted((root / "ivr").rglob("*.py"))
        sources = {module_name(path, root): path.read_text() for path in files}
        # Every folder of modules, with or without __init__.py (ivr/ops is a namespace package).
        packages = {module_name(path.parent / "__init__.py", root) for path in files}
        return cls(sources, packages)

    def cycles(self) -> list[list[str]]:
        """The shortest way round each knot: ``[a, b, a]`` for ``a -> b -> a``."""
        return [self._cycle_within(set(knot)) for knot in self.knots()]

    def knots(self) -> list[list[str]]:
        """Packages that all reach each other: strongly connected components, Tarjan's way."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        components: list[list[str]] = []

        def visit(node: str) -> None:
            index[node] = low[node] = len(index)
            stack.append(node)
            for target in sorted(self.edges.get(node, {})):
                if target not in index:
                    visit(target)
                    low[node] = min(low[node], low[target])
                elif target in stack:
                    low[node] = min(low[node], index[target])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))

        for node in sorted(self.edges):
            if node not in index:
                visit(node)
        return components

    def _cycle_within(self, component: set[str]) -> list[str]:
        """A closed path through a strongly connected component, from its first node back to it."""
        start = min(component)
        paths = {start: [start]}
        frontier = [start]
        while frontier:  # breadth first: the shortest way round
            following = []
            for node in frontier:
                for target in sorted(self.edges.get(node, {})):
                    if target == start:
                        return [*paths[node], start]
                    if target in component and target not in paths:
                        paths[target] = [*paths[node], target]
                        following.append(target)
            frontier = following
        raise AssertionError(f"no cycle in {component}")

    def describe(self, cycle: list[str]) -> str:
        return "\n  ".join(f"{a} -> {b} ({self._where(a, b)})" for a, b in itertools.pairwise(cycle))

    def _where(self, node: str, target: str) -> str:
        return ", ".join(dict.fromkeys(imp.where for imp in self.edges[node][target]))

    def forbidden_edges(self, allowed: Mapping[str, set[str]]) -> list[str]:
        problems = []
        for node in sorted(self.edges):
            if node not in allowed:
                problems.append(f"{node} is not in ALLOWED: say what it may import")
                continue
            for target in sorted(self.edges[node]):
                if target not in allowed[node]:
                    problems.append(f"{node} -> {target} is not allowed ({self._where(node, target)})")
        return problems

    def io_in_cores(self, cores: set[str] = SANS_IO) -> list[str]:
        return [
            f"{imp.where} imports {imp.module}"
            for imp in self.imports
            if self.node_of(imp.importer) in cores and imp.module.split(".")[0] in IO_MODULES
        ]

    def private_imports(self, to_go: set[tuple[str, str]] = PRIVATE_TO_GO) -> list[str]:
        problems = []
        for imp in self.imports:
            if not imp.module.startswith("ivr"):
                continue
            target = self.target_of(imp)
            if self.home_of(target) == self.home_of(imp.importer):
                continue
            names = target.split(".")[1:]
            if imp.name is not None and target == imp.module:
                names.append(imp.name)
            private = [name for name in names if _private(name)]
            if private and (self.node_of(imp.importer), target) not in to_go:
                problems.append(f"{imp.where} imports {', '.join(private)} from {target}")
        return problems


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph.of_tree(ROOT)


def test_no_cycle_between_packages(graph: Graph) -> None:
    knots = graph.knots()
    assert not knots, "\n\n".join(
        f"{', '.join(knot)} import each other; one way round:\n  {graph.describe(cycle)}"
        for knot, cycle in zip(knots, graph.cycles(), strict=True)
    )


def test_every_edge_is_allowed(graph: Graph) -> None:
    problems = graph.forbidden_edges(ALLOWED)
    assert not problems, "imports against the layering (see ALLOWED):\n" + "\n".join(problems)


def test_sans_io_cores_do_no_io(graph: Graph) -> None:
    problems = graph.io_in_cores()
    assert not problems, "I/O in a sans-IO core:\n" + "\n".join(problems)


def test_no_private_name_crosses_a_package(graph: Graph) -> None:
    problems = graph.private_imports()
    assert not problems, "private names imported from another package:\n" + "\n".join(problems)


def test_allowed_table_has_no_cycle() -> None:
    # The target itself must be one-way, or an allowed edge could close a loop.
    edges = {node: {t: [Import(node, t, None, 0)] for t in targets} for node, targets in ALLOWED.items()}
    table = Graph({}, [])
    table.edges = edges
    assert table.cycles() == []


def test_the_checker_sees_every_package(graph: Graph) -> None:
    # A walk that missed files would pass everything: the known layers must show up.
    assert {"ivr.sip", "ivr.media", "ivr.ops", "ivr.app"} <= graph.packages
    assert {"ivr.app", "ivr.call", "ivr.flow", "ivr.ops", "ivr.cli"} <= set(graph.edges)
    assert "ivr.sip.uacore" in graph.modules and graph.edges["ivr.app"]["ivr.call"]


def test_the_architecture_document_draws_the_same_map() -> None:
    """docs/architecture.md's table of who may import whom says what ALLOWED says."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    besides = {"ivr", "ivr.logs", "ivr._compiled", "ivr.__main__"}  # not in the table: see its text
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `ivr.") and len(cells) == 2:
            (package,) = re.findall(r"`(ivr[\w.]*)`", cells[0])
            rows[package] = set(re.findall(r"`(ivr[\w.]*)`", cells[1]))
            if cells[1] == "every package":
                rows[package] = set(ALLOWED) - besides - {package}
    assert rows == {node: targets - besides for node, targets in ALLOWED.items() if node not in besides}


# -- self-tests on made-up trees --------------------------------------------------------------

SYNTHETIC_PACKAGES = {"ivr", "ivr.call", "ivr.flow", "ivr.sip", "ivr.media", "ivr.flow._hidden"}


def synthetic(**modules: str) -> Graph:
    """A tree from keyword arguments: ``call__engine="..."`` is the module ``ivr.call.engine``."""
    sources = {"ivr." + name.replace("__", "."): source for name, source in modules.items()}
    return Graph(sources, SYNTHETIC_PACKAGES)


def test_a_cycle_through_a_lazy_import_is_found_and_printed() -> None:
    tree = synthetic(
        call__engine="from ivr.flow.port import Port\n",
        flow__run="def later():\n    from ivr.call import engine\n",
    )
    cycles = tree.cycles()
    assert tree.knots() == [["ivr.call", "ivr.flow"]]
    assert cycles == [["ivr.call", "ivr.flow", "ivr.call"]]
    assert tree.describe(cycles[0]) == (
        "ivr.call -> ivr.flow (ivr.call.engine:1)\n  ivr.flow -> ivr.call (ivr.flow.run:2)"
    )


def test_a_cycle_over_three_packages_is_one_cycle() -> None:
    tree = synthetic(
        call__a="import ivr.flow.b\n", flow__b="from ivr.sip import c\n", sip__c="from ivr.call.a import x\n"
    )
    assert tree.cycles() == [["ivr.call", "ivr.flow", "ivr.sip", "ivr.call"]]


def test_relative_imports_are_resolved() -> None:
    tree = synthetic(
        call__engine="from ..flow import port\n",
        call="from .engine import Engine\n",  # ivr/call/__init__.py: within the package
        flow__port="from ..call.engine import Engine\n",
    )
    assert tree.edges["ivr.call"].keys() == {"ivr.flow"}
    assert tree.cycles() == [["ivr.call", "ivr.flow", "ivr.call"]]


def test_no_cycle_in_a_one_way_tree() -> None:
    tree = synthetic(call__engine="from ivr.sip import uacore\n", flow__port="import asyncio\n")
    assert tree.cycles() == []


def test_an_edge_outside_the_table_is_reported_with_its_line() -> None:
    tree = synthetic(flow__port="import json\n\n\ndef f():\n    from ivr.call.engine import Engine\n")
    assert tree.forbidden_edges({"ivr.flow": {"ivr.logs"}}) == [
        "ivr.flow -> ivr.call is not allowed (ivr.flow.port:5)"
    ]
    assert tree.forbidden_edges({"ivr.flow": {"ivr.call"}}) == []


def test_a_package_missing_from_the_table_is_reported() -> None:
    tree = synthetic(call__engine="from ivr.sip import uacore\n")
    assert tree.forbidden_edges({}) == ["ivr.call is not in ALLOWED: say what it may import"]


def test_io_in_a_core_is_reported() -> None:
    tree = synthetic(
        sip__transport="import socket\n",
        media__clock="def tick():\n    from asyncio import sleep\n",
        media__ok="import selectorsx\n",  # a name that only starts like one
        call__engine="import asyncio\nimport threading\n",  # a shell: I/O is its job
    )
    assert tree.io_in_cores() == ["ivr.media.clock:2 imports asyncio", "ivr.sip.transport:1 imports socket"]


def test_private_names_from_another_package_are_reported() -> None:
    tree = synthetic(
        flow__build="def _weekdays(): ...\n",
        call__a="from ivr.flow.build import _weekdays, public\n",
        call__b="from ivr.flow import _secret_module\n",
        call__c="import ivr.flow._hidden.x\n",
        flow__d="from ivr.flow.build import _weekdays\nfrom .build import _weekdays\n",  # at home: fine
        call__e="from ivr.flow import __version__\n",  # dunders are public
    )
    assert sorted(tree.private_imports(set())) == [
        "ivr.call.a:1 imports _weekdays from ivr.flow.build",
        "ivr.call.b:1 imports _secret_module from ivr.flow",
        "ivr.call.c:1 imports _hidden from ivr.flow._hidden.x",
    ]
    assert tree.private_imports({("ivr.call", "ivr.flow.build")}) == [
        "ivr.call.b:1 imports _secret_module from ivr.flow",
        "ivr.call.c:1 imports _hidden from ivr.flow._hidden.x",
    ]


def test_top_level_modules_share_the_root_package() -> None:
    # ivr/cli.py may use ivr/_compiled.py: both are the root package's own modules.
    tree = Graph({"ivr.cli": "from ivr import _compiled\n", "ivr._compiled": ""}, {"ivr"})
    assert tree.private_imports(set()) == []
    assert tree.edges == {"ivr.cli": {"ivr._compiled": [Import("ivr.cli", "ivr", "_compiled", 1)]}}
