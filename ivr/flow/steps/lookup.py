"""The ``lookup`` step: a row of a table beside the flow, or a webhook's JSON reply, into
``lookup.<into>``; then ``found``, ``not_found`` or (a webhook that failed) ``fallback``.

A table is read once, when the flow is loaded (``ivr.flow.sources``). A webhook must have a
timeout and a ``fallback``, and may only call hosts listed in ``settings.http.allow``: a slow or
broken service must never strand a caller, and a flow must not reach any host it likes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ivr.flow import model as m
from ivr.flow.expressions import Expr, Value
from ivr.flow.loader import PathKey
from ivr.flow.port import LookupFailed
from ivr.flow.sources import find_row, load_table
from ivr.flow.steps.kind import (
    DURATION,
    EXPRESSION,
    STEP_NAME,
    VARIABLE,
    CallRuntime,
    Exit,
    FlowBuilder,
    Go,
    Next,
    Schema,
    StepKind,
    WrittenStep,
    as_text,
)


@dataclass(frozen=True)
class TableSource:
    path: str  # relative to the flow file
    rows: tuple[Mapping[str, str], ...]
    at: m.Mark = field(compare=False)


@dataclass(frozen=True)
class HttpSource:
    url: str
    params: Mapping[str, Expr]
    timeout: float
    at: m.Mark = field(compare=False)


@dataclass(frozen=True, kw_only=True)
class LookupStep(m.Step):
    KIND = "lookup"
    source: TableSource | HttpSource
    key: str | None  # table column compared with ``value``
    value: Expr | None
    value_at: m.Mark = field(compare=False)
    into: str  # results land in ``lookup.<into>``
    found: m.Ref | None
    not_found: m.Ref | None
    fallback: m.Ref | None  # webhook failed or timed out


class Lookup(StepKind[LookupStep]):
    name = "lookup"
    schema: ClassVar[Schema] = {
        "type": "object",
        "required": ["into"],
        "additionalProperties": False,
        "properties": {
            "table": {"type": "string", "description": "YAML or CSV file beside the flow."},
            "key": {"type": "string", "description": "Column of the table to match."},
            "value": EXPRESSION,
            "url": {
                "type": "string",
                "description": "HTTP JSON webhook; its host must be in settings.http.allow.",
            },
            "params": {"type": "object", "additionalProperties": EXPRESSION},
            "timeout": DURATION,
            "into": VARIABLE,
        },
    }
    fields: ClassVar[Mapping[str, Schema]] = {
        "found": STEP_NAME,
        "not_found": STEP_NAME,
        "fallback": STEP_NAME,
    }
    takes_next = True

    def build(self, b: FlowBuilder, written: WrittenStep) -> LookupStep:
        value, path, raw = written.value, written.value_path, written.raw
        source: TableSource | HttpSource
        at = b.doc.mark(path, key=True)
        if ("table" in value) == ("url" in value):
            b.error(at, "lookup needs exactly one of 'table' or 'url'")
        if "url" in value:
            timeout = 0.0
            if "timeout" not in value:
                b.error(at, "webhook lookup has no timeout (add e.g. timeout: 2s)")
            else:
                timeout = b.duration(value["timeout"], (*path, "timeout"), 0.0)
            params = {k: b.expr(v, (*path, "params", k)) for k, v in (value.get("params") or {}).items()}
            source = HttpSource(str(value["url"]), params, timeout, b.doc.mark((*path, "url")))
        else:
            source = self.table(b, str(value.get("table", "")), (*path, "table"))
            if "key" not in value or "value" not in value:
                b.error(at, "table lookup needs 'key' (a column) and 'value' (an expression)")
            elif source.rows and value["key"] not in source.rows[0]:
                b.error(b.doc.mark((*path, "key")), f"table '{source.path}' has no column '{value['key']}'")
        return LookupStep(
            source=source,
            key=value.get("key"),
            value=b.expr(value["value"], (*path, "value")) if "value" in value else None,
            value_at=b.doc.text_mark((*path, "value"), 1),
            into=str(value["into"]),
            found=b.ref(raw.get("found"), (*written.path, "found")),
            not_found=b.ref(raw.get("not_found"), (*written.path, "not_found")),
            fallback=b.ref(raw.get("fallback"), (*written.path, "fallback")),
            **written.common,
        )

    def table(self, b: FlowBuilder, name: str, path: PathKey) -> TableSource:
        at = b.doc.mark(path)
        rows = load_table(b.base_dir / name) if name else None
        if isinstance(rows, str):
            b.error(at, f"cannot read table '{name}': {rows}")
            rows = None
        return TableSource(name, tuple(rows or ()), at)

    async def run(self, call: CallRuntime, step: LookupStep, scope: m.Scope) -> Next:
        lookups = call.vars.setdefault("lookup", {})
        assert isinstance(lookups, dict)
        result: dict[str, Value] | None
        if isinstance(step.source, TableSource):
            value = step.value.evaluate(call.vars) if step.value is not None else None
            result = find_row(step.source.rows, step.key or "", value)
        else:
            source = step.source
            params = {k: as_text(e.evaluate(call.vars)) for k, e in source.params.items()}
            try:
                if _host(source.url) not in call.settings.http_allow:  # the validator checks it too
                    raise LookupFailed(f"host of {source.url} not allowed")
                reply = await call.http(source.url, params, source.timeout)
            except LookupFailed as exc:
                call.log.warning("webhook failed", step=step.name, error=str(exc))
                call.note({"webhook": "failed", "error": str(exc)})
                lookups[step.into] = None
                if step.fallback is None:
                    raise
                return Go(step.fallback.name, scope.name)
            except Exception as exc:  # an injected service must not take the call down
                call.log.exception("webhook service raised", step=step.name)
                call.note({"webhook": "failed", "error": repr(exc)})
                lookups[step.into] = None
                if step.fallback is None:
                    raise LookupFailed(repr(exc)) from exc
                return Go(step.fallback.name, scope.name)
            result = _json_value(reply) if reply else None  # type: ignore[assignment]
        lookups[step.into] = result
        call.note({"lookup": step.into, "found": result is not None})
        target = (step.found if result is not None else step.not_found) or step.next
        return call.follow(target, scope)

    def exits(self, step: LookupStep, flow: m.Flow) -> list[Exit]:
        return [
            Exit(step.found, "found"),
            Exit(step.not_found, "not found"),
            Exit(step.fallback, "webhook failed", dashed=True),
        ]

    def dead_end(self, step: LookupStep) -> str | None:
        if step.found is None and step.next is None:
            return "'found' (or 'next')"
        if step.not_found is None and step.next is None:
            return "'not_found' (or 'next')"
        if isinstance(step.source, HttpSource) and step.fallback is None:
            return "'fallback' (where to go when the webhook fails)"
        return None

    def check(self, flow: m.Flow, scope: m.Scope, step: LookupStep) -> Iterator[m.FlowError]:
        if not isinstance(step.source, HttpSource):
            return
        host = _host(step.source.url)
        if urlsplit(step.source.url).scheme not in ("http", "https"):
            yield m.FlowError(
                step.source.at, f"webhook url must start with http:// or https://, got '{step.source.url}'"
            )
        elif host not in flow.settings.http_allow:
            yield m.FlowError(step.source.at, f"webhook host '{host}' is not in settings.http.allow")

    def expressions(self, step: LookupStep) -> list[tuple[Expr, m.Mark]]:
        found = [(step.value, step.value_at)] if step.value is not None else []
        if isinstance(step.source, HttpSource):
            found += [(e, step.source.at) for e in step.source.params.values()]
        return found

    def assigns(self, step: LookupStep) -> list[tuple[str, ...]]:
        return [("lookup", step.into)]


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def _json_value(data: Any) -> Value:
    """JSON from a webhook, reduced to what expressions and templates understand."""
    if isinstance(data, dict):
        return {str(k): _json_value(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_json_value(v) for v in data]
    if isinstance(data, str | int | float | bool) or data is None:
        return data
    return str(data)


LOOKUP = Lookup()
