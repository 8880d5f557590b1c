"""The loader keeps file:line:column for every value and refuses what YAML would let slip."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow.loader import LoadError, load_yaml
from ivr.flow.model import Mark
from ivr.flow.steps.flow_schema import schema_errors

TEXT = """\
flow: x
steps:
  hello:
    say: "Hi {caller}."
    next: bye
  list:
    - one
    - 2
"""


def test_every_value_and_key_keeps_its_mark() -> None:
    doc = load_yaml(TEXT, "f.yaml")
    assert doc.data["steps"]["hello"]["say"] == "Hi {caller}."
    assert doc.mark(("steps", "hello", "say")) == Mark("f.yaml", 4, 10)
    assert doc.mark(("steps", "hello"), key=True) == Mark("f.yaml", 3, 3)
    assert doc.mark(("steps", "list", 1)) == Mark("f.yaml", 8, 7)
    # Quoted text starts one column after the quote: expression columns land on the character.
    assert doc.text_mark(("steps", "hello", "say"), 4) == Mark("f.yaml", 4, 14)
    # An unknown path falls back to the nearest enclosing value.
    assert doc.mark(("steps", "hello", "missing")) == Mark("f.yaml", 4, 5)


def test_duplicate_keys_are_errors_not_silent_overwrites() -> None:
    with pytest.raises(LoadError) as err:
        load_yaml("steps:\n  a: 1\n  a: 2\n", "d.yaml")
    assert str(err.value) == "d.yaml:3:3: duplicate key 'a' (first written at line 2)"


def test_unsafe_tags_are_refused() -> None:
    with pytest.raises(LoadError) as err:
        load_yaml("x: !!python/object/apply:os.system ['true']\n", "evil.yaml")
    assert err.value.at.line == 1 and "unsupported YAML tag" in err.value.message


def test_dates_stay_text_and_syntax_errors_have_marks() -> None:
    assert load_yaml("when: 2024-05-06\n", "t.yaml").data == {"when": "2024-05-06"}
    with pytest.raises(LoadError) as err:
        load_yaml("a: [1, 2\nb: 3\n", "s.yaml")
    assert err.value.at.file == "s.yaml" and err.value.at.line == 2


def test_alias_bombs_are_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]" for i in range(1, 9)]
    with pytest.raises(LoadError, match="more than"):
        load_yaml("\n".join(lines) + "\n", "bomb.yaml")


def test_schema_errors_point_at_the_offending_key() -> None:
    doc = load_yaml("flow: x\nlanguage: en\nstart: a\nsteps:\n  a:\n    hangup: true\n    nxt: b\n", "s.yaml")
    errors = schema_errors(doc)
    assert errors == [(Mark("s.yaml", 7, 5), errors[0][1])]
    assert errors[0][1].startswith("unknown field 'nxt'")


def test_a_flow_carries_the_hash_of_the_file_it_was_loaded_from(tmp_path: Path) -> None:
    """The version a call record names is the file as served, not as it is when the call ends."""
    import hashlib

    from ivr.flow.validate import check_file

    source = (Path(__file__).parents[2] / "flows" / "demo.yaml").read_bytes()
    path = tmp_path / "demo.yaml"
    path.write_bytes(source)
    flow, errors = check_file(path)
    assert not errors and flow is not None
    assert flow.version == hashlib.sha256(source).hexdigest()[:12]
    path.write_bytes(source + b"\n# edited\n")
    assert flow.version == hashlib.sha256(source).hexdigest()[:12]
    edited, _ = check_file(path)
    assert edited is not None and edited.version != flow.version
