"""The OpenAPI 3.1 description of the HTTP API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any


def _op(summary: str, ok: str, params: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
        ],
        "responses": {
            "200": {"description": ok, "content": {"application/json": {}}},
            "401": {"description": "missing or wrong token"},
            "404": {"description": "no such object or action"},
            "409": {"description": "not possible in the current state"},
        },
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "ivr", "version": "0.1.0", "description": "Agents, live calls, queue and callbacks."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/api/agents": {"get": _op("Agents and their states", "the agents")},
        "/api/agents/{agent}/{action}": {
            "post": _op(
                "Agent logs in, logs out, or finishes wrap-up (action: login, logout, wrap-up-done)",
                "the agent's new state",
                ("agent", "action"),
            )
        },
        "/api/calls": {"get": _op("Live calls with their current step", "the live calls")},
        "/api/calls/{call_id}": {
            "get": _op(
                "A live call's step, whether the caller's turn is now, and the partial transcript of"
                " what they are saying",
                "the call",
                ("call_id",),
            )
        },
        "/api/records/{call_id}": {
            "get": _op("The detail record of a finished call", "the record", ("call_id",))
        },
        "/api/calls/{call_id}/context": {
            "get": _op(
                "What the IVR learned on a live call (CRM screen-pop)", "the call's context", ("call_id",)
            )
        },
        "/api/queue": {"get": _op("Callers and callbacks waiting, in order", "the queue")},
        "/api/callbacks": {"get": _op("Callbacks with promise and risk", "the callbacks")},
        "/api/callbacks/{id}/{action}": {
            "post": _op(
                "Cancel, retry or reschedule a callback (action: cancel, retry, reschedule?start=&by=)",
                "the new state",
                ("id", "action"),
            )
        },
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
    },
}
