"""Where lookup steps look: static tables shipped beside the flow, and HTTP JSON webhooks.

Tables are read when the flow is loaded (``load_table``), so a lookup during a call is a
scan of rows in memory. Webhooks run ``urllib`` in a worker thread so the event loop keeps pacing
audio for every other call; the timeout is mandatory, redirects are not followed (a redirect could
leave the allowlisted host), and replies are bounded in size.
"""

from __future__ import annotations

import asyncio
import csv
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ivr.flow.expressions import Value
from ivr.flow.port import LookupFailed

MAX_REPLY = 256 * 1024


def find_row(rows: Sequence[Mapping[str, str]], column: str, value: Value) -> dict[str, Value] | None:
    """The first row whose ``column`` equals ``value`` (compared as trimmed, case-folded text)."""
    wanted = "" if value is None else str(value).strip().casefold()
    for row in rows:
        if str(row.get(column, "")).strip().casefold() == wanted:
            return dict(row)
    return None


def load_table(path: Path) -> list[dict[str, str]] | str:
    """Rows of a CSV (with a header line) or YAML (a list of mappings) file; an error text if not."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
    if path.suffix.lower() == ".csv":
        return [
            {k.strip(): (v or "").strip() for k, v in row.items() if k}
            for row in csv.DictReader(text.splitlines())
        ]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return f"not valid YAML: {exc}"
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        return "expected a list of rows (mappings)"
    return [{str(k): "" if v is None else str(v) for k, v in row.items()} for row in data]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _fetch(url: str, params: Mapping[str, str], timeout: float) -> dict[str, Any]:
    query = urllib.parse.urlencode(dict(params))
    full = f"{url}{'&' if '?' in url else '?'}{query}" if query else url
    request = urllib.request.Request(full, headers={"Accept": "application/json", "User-Agent": "ivr-flow"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read(MAX_REPLY + 1)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection; left open it leaks a socket per failed lookup
        if exc.code == 404:
            return {}  # the service knows nothing about this key: "not found", not a failure
        raise LookupFailed(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise LookupFailed(str(getattr(exc, "reason", exc))) from None
    if len(body) > MAX_REPLY:
        raise LookupFailed("reply too large")
    try:
        data = json.loads(body)
    except ValueError:
        raise LookupFailed("reply is not JSON") from None
    if not isinstance(data, dict):
        raise LookupFailed("reply is not a JSON object")
    return data


async def http_lookup(url: str, params: Mapping[str, str], timeout: float) -> dict[str, Any]:
    """The default webhook service: GET ``url?params`` and decode a JSON object.

    An empty object (or a 404) means "not found"; ``LookupFailed`` means the fallback step.
    """
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(None, _fetch, url, params, timeout), timeout + 0.5)
    except TimeoutError:
        raise LookupFailed("timed out") from None
