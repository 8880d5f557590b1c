"""``python -m ivr.flow.steps.schema``: write the flow schema the step kinds generate to
``schema/flow.schema.json``, the file editors read (``--check``: only say whether it is current).

The schema itself is made in ``ivr.flow.steps.flow_schema``; this module is only run, never
imported by ``ivr validate``, so that running it does not load it twice. The file is written the
way people read JSON: a value on one line when it fits, else one item per line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ivr.flow.steps.flow_schema import flow_schema

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schema" / "flow.schema.json"
WIDTH = 120  # the longest line a value is kept on, indentation and key included


def schema_text(schema: Mapping[str, Any] | None = None) -> str:
    """The file's text for ``schema`` (by default: the one the registered kinds generate)."""
    return _dump(flow_schema() if schema is None else schema, 0) + "\n"


def _dump(value: Any, indent: int, lead: int = 0) -> str:
    """``value`` at ``indent``, after ``lead`` characters of its key on the same line."""
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if not isinstance(value, dict | list) or not value or indent + lead + len(flat) <= WIDTH:
        return flat
    inner = " " * (indent + 2)
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            name = json.dumps(key, ensure_ascii=False)
            items.append(f"{inner}{name}: {_dump(item, indent + 2, len(name) + 2)}")
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    return "[\n" + ",\n".join(inner + _dump(item, indent + 2) for item in value) + "\n" + " " * indent + "]"


def is_current(path: Path = SCHEMA_PATH) -> bool:
    """Whether the file at ``path`` is exactly what the registered kinds generate."""
    try:
        return path.read_text(encoding="utf-8") == schema_text()
    except OSError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ivr.flow.steps.schema", description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=SCHEMA_PATH, help="where the schema goes")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not current")
    args = parser.parse_args(argv)
    if args.check:
        current = is_current(args.path)
        print(f"{args.path}: {'current' if current else 'out of date: run python -m ivr.flow.steps.schema'}")
        return 0 if current else 1
    args.path.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
