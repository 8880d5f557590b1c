"""The HTTP API for agents, supervisors and CRM screen-pops, and the Prometheus endpoint.

Served by aiohttp (a well-kept asyncio HTTP server) inside the IVR's own event loop, so it sees the
live state directly. Everything under /api needs ``Authorization: Bearer <token>``; /metrics is
for the scraper and /openapi.json describes the rest.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest

from ivr.app.flow_application import FlowApplication
from ivr.call.engine import Engine
from ivr.handoff.agents import AgentEvent, AgentState, InvalidTransition
from ivr.handoff.service import Handoff
from ivr.ops.live_view import LiveView
from ivr.ops.metrics import Metrics
from ivr.ops.openapi import OPENAPI
from ivr.store.base import ACTIVE_STATES, CallbackState, StaleState, StoreError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SNAPSHOT_SECONDS = 1.0
AT_RISK_SECONDS = 300.0  # a callback this close to its promise with no agent on it gets a warning
AGENT_ACTIONS = {
    "login": AgentEvent.LOGIN,
    "logout": AgentEvent.LOGOUT,
    "wrap-up-done": AgentEvent.WRAP_UP_DONE,
}


@dataclass
class Ops:
    engine: Engine
    handoff: Handoff
    flows: FlowApplication
    metrics: Metrics
    token: str
    live: LiveView  # the calls in progress: this process's, or every worker's


def build_app(ops: Ops) -> web.Application:
    app = web.Application(middlewares=[_auth(ops.token)])
    app["ops"] = ops
    app.router.add_get("/", supervisor_page)
    app.router.add_get("/api/events", events)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/api/agents", agents)
    app.router.add_post("/api/agents/{agent}/{action}", agent_action)
    app.router.add_get("/api/calls", calls)
    app.router.add_get("/api/calls/{call_id}", call_state)
    app.router.add_get("/api/calls/{call_id}/context", call_context)
    app.router.add_get("/api/records/{call_id}", call_record)
    app.router.add_get("/api/queue", queue)
    app.router.add_get("/api/callbacks", callbacks)
    app.router.add_post("/api/callbacks/{id}/{action}", callback_action)
    return app


def _auth(token: str) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            given = request.headers.get("Authorization", "")
            if request.path == "/api/events" and "token" in request.query:
                given = "Bearer " + request.query["token"]  # EventSource cannot set headers
            # Constant-time comparison: the token must not leak through response timing.
            if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), token.encode()):
                return web.json_response(
                    {"error": "missing or wrong token"}, status=401, headers={"WWW-Authenticate": "Bearer"}
                )
        return await handler(request)

    return check


def _ops(request: web.Request) -> Ops:
    ops: Ops = request.app["ops"]
    return ops


async def metrics(request: web.Request) -> web.Response:
    ops = _ops(request)
    m = ops.metrics
    m.active_calls.set(ops.engine.active_calls)
    m.queue_length.set(len(ops.handoff.queue))
    for agent_state in AgentState:
        m.agents.labels(agent_state.value).set(sum(1 for a in ops.handoff.pool if a.state is agent_state))
    records = await ops.handoff.store_thread.run(ops.handoff.store.list_callbacks)
    now = time.time()
    for state in CallbackState:
        m.callbacks.labels(state.value).set(sum(1 for r in records if r.state is state))
    m.callbacks_overdue.set(sum(1 for r in records if r.state in ACTIVE_STATES and r.promised_by < now))
    connected = [r for r in records if r.state is CallbackState.CONNECTED and r.connected_at is not None]
    if connected:
        kept = sum(1 for r in connected if r.connected_at is not None and r.connected_at <= r.promised_by)
        m.callbacks_kept_ratio.set(kept / len(connected))
    return web.Response(body=generate_latest(m.registry), content_type="text/plain", charset="utf-8")


PAGE = (Path(__file__).parent / "supervisor.html").read_text(encoding="utf-8")


async def supervisor_page(request: web.Request) -> web.Response:
    """The supervisor page: static, no build step; its data comes over /api/events."""
    return web.Response(text=PAGE, content_type="text/html")


async def snapshot(ops: Ops) -> dict[str, Any]:
    now = time.time()
    records = await ops.handoff.store_thread.run(ops.handoff.store.list_callbacks, ACTIVE_STATES)
    return {
        "calls": [
            {
                "caller": call["caller"],
                "flow": call["flow"],
                "step": call["step"],
                "seconds": round(now - call["started_at"]),
                "partial": call["partial"],
            }
            for call in await ops.live.all()
        ],
        "queue": [
            {"key": e.key, "kind": e.kind, "language": e.language, "waiting": round(now - e.entered_at)}
            for e in ops.handoff.queue
        ],
        "agents": [_agent_json(a) for a in ops.handoff.pool],
        "callbacks": [
            {
                "number": r.number,
                "state": r.state.value,
                "promise": r.promise_text,
                "attempts": r.attempts,
                "max_attempts": r.max_attempts,
                "overdue": r.promised_by < now,
                "at_risk": r.promised_by - now < AT_RISK_SECONDS,
            }
            for r in records
        ],
        "steps": [
            {
                "flow": flow,
                "step": step,
                "entered": s["entered"],
                "hangups": s["hangups"],
                "misses": s["misses"],
            }
            for (flow, step), s in sorted(ops.flows.step_stats.items())
        ],
    }


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a full snapshot each second (small, and a reconnect needs no replay)."""
    ops = _ops(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    try:
        while True:
            data = json.dumps(await snapshot(ops), separators=(",", ":"))
            await response.write(f"data: {data}\n\n".encode())
            await asyncio.sleep(SNAPSHOT_SECONDS)
    except ConnectionResetError:
        pass  # the page was closed
    return response


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def _agent_json(agent: Any) -> dict[str, Any]:
    return {
        "id": agent.id,
        "name": agent.name,
        "uri": agent.sip_uri,
        "languages": sorted(agent.languages),
        "skills": sorted(agent.skills),
        "state": agent.state.value,
        "since": agent.since,
        "calls_handled": agent.calls_handled,
    }


async def agents(request: web.Request) -> web.Response:
    return web.json_response([_agent_json(a) for a in _ops(request).handoff.pool])


async def agent_action(request: web.Request) -> web.Response:
    pool = _ops(request).handoff.pool
    event = AGENT_ACTIONS.get(request.match_info["action"])
    if event is None:
        return web.json_response({"error": f"actions are {sorted(AGENT_ACTIONS)}"}, status=404)
    try:
        pool.get(request.match_info["agent"])
    except KeyError:
        return web.json_response({"error": "no such agent"}, status=404)
    try:
        pool.apply(request.match_info["agent"], event, time.time())
    except InvalidTransition as error:
        return web.json_response({"error": str(error)}, status=409)
    return web.json_response(_agent_json(pool.get(request.match_info["agent"])))


async def calls(request: web.Request) -> web.Response:
    now = time.time()
    keys = ("call_id", "caller", "called", "flow", "step")
    return web.json_response(
        [
            {**{key: call[key] for key in keys}, "seconds": round(now - call["started_at"], 1)}
            for call in await _ops(request).live.all()
        ]
    )


async def call_state(request: web.Request) -> web.Response:
    call = await _ops(request).live.find(request.match_info["call_id"])
    if call is None:
        return web.json_response({"error": "no such live call"}, status=404)
    keys = ("call_id", "flow", "step", "listening", "listens", "partial")
    return web.json_response({key: call[key] for key in keys})


async def call_record(request: web.Request) -> web.Response:
    """The detail record of a finished call (path, what was said, outcome)."""
    ops = _ops(request)
    call_id = request.match_info["call_id"]
    records = await ops.handoff.store_thread.run(ops.handoff.store.calls, 0.0, time.time() + 1)
    for record in records:
        if record.call_id == call_id:
            return web.json_response(
                {
                    "call_id": record.call_id,
                    "flow": record.flow,
                    "flow_version": record.flow_version,
                    "path": list(record.path),
                    "inputs": list(record.inputs),
                    "handoff": record.handoff,
                    "outcome": record.outcome,
                    "caller": record.caller,
                    "started_at": record.started_at,
                    "ended_at": record.ended_at,
                }
            )
    return web.json_response({"error": "no record for this call (yet)"}, status=404)


async def call_context(request: web.Request) -> web.Response:
    call = await _ops(request).live.find(request.match_info["call_id"])
    if call is None:
        return web.json_response({"error": "no such live call"}, status=404)
    keys = ("call_id", "caller", "flow", "step", "context")
    return web.json_response({key: call[key] for key in keys})


async def queue(request: web.Request) -> web.Response:
    now = time.time()
    return web.json_response(
        [
            {
                "key": e.key,
                "kind": e.kind,
                "language": e.language,
                "skill": e.skill,
                "waiting": round(now - e.entered_at, 1),
            }
            for e in _ops(request).handoff.queue
        ]
    )


async def callbacks(request: web.Request) -> web.Response:
    ops = _ops(request)
    records = await ops.handoff.store_thread.run(ops.handoff.store.list_callbacks)
    now = time.time()
    return web.json_response(
        [
            {
                "id": r.id,
                "number": r.number,
                "state": r.state.value,
                "attempts": r.attempts,
                "max_attempts": r.max_attempts,
                "promised_by": r.promised_by,
                "promise": r.promise_text,
                "at_risk": r.state in ACTIVE_STATES and r.promised_by - now < 300,
                "last_outcome": r.last_outcome,
            }
            for r in records
        ]
    )


async def callback_action(request: web.Request) -> web.Response:
    ops = _ops(request)
    store = ops.handoff.store
    name = request.match_info["action"]
    actions = {"cancel": store.cancel, "retry": store.operator_retry}
    if name not in (*actions, "reschedule"):
        return web.json_response({"error": "actions are cancel, retry, reschedule"}, status=404)
    try:
        callback_id = int(request.match_info["id"])
        if name == "reschedule":
            # ?start=<unix seconds>&by=<unix seconds>: the new window and what is now promised.
            start, by = float(request.query["start"]), float(request.query["by"])
            record = await ops.handoff.store_thread.run(store.reschedule, callback_id, start, by, time.time())
        else:
            record = await ops.handoff.store_thread.run(actions[name], callback_id, time.time())
    except KeyError:
        return web.json_response({"error": "reschedule needs ?start=...&by=... (unix seconds)"}, status=400)
    except ValueError:
        return web.json_response({"error": "callback ids are numbers"}, status=400)
    except (StaleState, StoreError) as error:
        return web.json_response({"error": str(error)}, status=409)
    return web.json_response({"id": record.id, "state": record.state.value})


async def start_http(ops: Ops, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(build_app(ops), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
