"""Safe YAML loading that remembers where every value came from.

The file is composed with ``yaml.SafeLoader`` (never the unsafe loader: a flow is operator input,
and YAML tags must not construct Python objects) and the node tree is walked into plain data while
each node's position is stored by its path, e.g. ``("steps", "menu", "menu", "choices", 1, "key")``.
That path is also what JSON Schema reports, so schema errors map back to ``file:line:column``
(``ivr.flow.steps.schema``).

The walk also catches what PyYAML lets through silently: a key written twice in one mapping
(the second would quietly replace the first step), and alias bombs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ivr.flow.model import Mark

PathKey = tuple[str | int, ...]
MAX_NODES = 200_000  # a flow is hand-written; more than this is an alias bomb, not a flow


class LoadError(Exception):
    def __init__(self, at: Mark, message: str) -> None:
        super().__init__(f"{at}: {message}")
        self.at = at
        self.message = message


@dataclass
class Document:
    """Plain data from one YAML file, with the mark of every value and of every mapping key."""

    file: str
    data: Any
    marks: dict[PathKey, Mark] = field(default_factory=dict)
    key_marks: dict[PathKey, Mark] = field(default_factory=dict)
    # Where the text of a one-line scalar starts relative to its mark (1 after a quote), so that
    # an error at column 7 of an expression points at column 7 of the expression in the file.
    text_offsets: dict[PathKey, int] = field(default_factory=dict)
    version: str = ""  # the file's content hash, when it came from a file (see load_file)

    def text_mark(self, path: PathKey, column: int) -> Mark:
        """The mark of 1-based ``column`` inside the scalar at ``path`` (its start if multi-line)."""
        base = self.mark(path)
        offset = self.text_offsets.get(path)
        if offset is None:
            return base
        return Mark(base.file, base.line, base.column + offset + column - 1)

    def is_one_line(self, path: PathKey) -> bool:
        return path in self.text_offsets

    def data_at(self, path: PathKey) -> Any:
        value = self.data
        for part in path:
            value = value[part]
        return value

    def mark(self, path: PathKey, *, key: bool = False) -> Mark:
        """The mark of ``path`` (its key with ``key=True``), or of the nearest enclosing value."""
        if key and path in self.key_marks:
            return self.key_marks[path]
        probe = path
        while probe:
            if probe in self.marks:
                return self.marks[probe]
            probe = probe[:-1]
        return self.marks.get((), Mark(self.file, 1, 1))


def _mark(file: str, node: yaml.Node) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)


class _Walker:
    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.doc = Document(file, None)
        self.count = 0

    def walk(self, node: yaml.Node, path: PathKey) -> Any:
        if node.tag not in _PLAIN_TAGS:
            # Only plain data: a tag like !!python/object must not even be looked at.
            raise LoadError(_mark(self.file, node), f"unsupported YAML tag '{node.tag}'")
        self.count += 1
        if self.count > MAX_NODES:
            raise LoadError(_mark(self.file, node), f"document has more than {MAX_NODES} values")
        self.doc.marks[path] = _mark(self.file, node)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            first_seen: dict[str, Mark] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise LoadError(_mark(self.file, key_node), "YAML merge keys ('<<') are not supported")
                key = self.scalar(key_node)
                if isinstance(key, dict | list) or not isinstance(key_node, yaml.ScalarNode):
                    raise LoadError(_mark(self.file, key_node), "mapping keys must be plain text")
                name = str(key).lower() if isinstance(key, bool) else str(key)
                key_mark = _mark(self.file, key_node)
                if name in first_seen:
                    earlier = first_seen[name]
                    raise LoadError(
                        key_mark, f"duplicate key '{name}' (first written at line {earlier.line})"
                    )
                first_seen[name] = key_mark
                self.doc.key_marks[(*path, name)] = key_mark
                result[name] = self.walk(value_node, (*path, name))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode) and node.start_mark.line == node.end_mark.line:
            self.doc.text_offsets[path] = 1 if node.style in ("'", '"') else 0
        return self.scalar(node)

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return None
        # Dates and times stay text: the flow decides how to read them (templates, hours).
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise LoadError(_mark(self.file, node), f"cannot read value: {exc.problem}") from None


def load_yaml(text: str, file: str) -> Document:
    """Parse one YAML document into a ``Document``; raises ``LoadError`` with a mark."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise LoadError(Mark(file, line, column), exc.problem or str(exc)) from None
        except yaml.YAMLError as exc:
            raise LoadError(Mark(file, 1, 1), str(exc)) from None
        walker = _Walker(file, loader)
        if node is None:
            walker.doc.data = None
        else:
            walker.doc.data = walker.walk(node, ())
        return walker.doc
    finally:
        loader.dispose()


def load_file(path: Path, display: str | None = None) -> Document:
    name = display if display is not None else str(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(Mark(name, 1, 1), f"cannot read file: {exc}") from None
    doc = load_yaml(text, name)
    # Hashed as loaded, once: the version a call ran is the one it was served from, even when
    # the file has been edited since (and no file is read again at every call's end).
    doc.version = hashlib.sha256(raw).hexdigest()[:12]
    return doc
