"""Prometheus metrics (prometheus_client, the well-kept reference client): what a contact centre
watches to know whether callers are served and promises kept."""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # The process itself (memory, CPU, open files) and its garbage collector: memory that grows
        # with calls, and objects the collector has to find, show here before callers hear them.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.gc_pause = Histogram(
            "ivr_gc_pause_seconds",
            "How long each garbage collection stopped the event loop (and every call's audio)",
            ["generation"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
            registry=r,
        )
        self._gc_started = 0.0
        self.loop_stall = Histogram(
            "ivr_event_loop_stall_seconds",
            "Stalls of the event loop over the --stall-ms threshold; the log names the code",
            buckets=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
            registry=r,
        )
        self.active_calls = Gauge("ivr_active_calls", "Calls in progress", registry=r)
        self.calls = Counter("ivr_calls", "Finished flow calls by outcome", ["flow", "outcome"], registry=r)
        self.time_to_human = Histogram(
            "ivr_time_to_human_seconds",
            "From the start of the call to talking with an agent",
            buckets=(5, 10, 20, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.queue_length = Gauge(
            "ivr_queue_length", "Callers and callbacks waiting for an agent", registry=r
        )
        self.agents = Gauge("ivr_agents", "Agents by state", ["state"], registry=r)
        self.callbacks = Gauge("ivr_callbacks", "Callbacks by state", ["state"], registry=r)
        self.callbacks_overdue = Gauge(
            "ivr_callbacks_overdue", "Open callbacks past their promised time", registry=r
        )
        self.callbacks_kept_ratio = Gauge(
            "ivr_callbacks_kept_ratio",
            "Share of connected callbacks connected within their promise",
            registry=r,
        )
        buckets = (15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
        self.wait_announced = Histogram(
            "ivr_wait_announced_seconds",
            "Waits announced to callers who then waited",
            buckets=buckets,
            registry=r,
        )
        self.wait_actual = Histogram(
            "ivr_wait_actual_seconds", "Actual waits of the same callers", buckets=buckets, registry=r
        )
        self.asr_latency = Histogram(
            "ivr_asr_latency_seconds",
            "From the end of the caller's speech to the recognition result, by step",
            ["step"],
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0),
            registry=r,
        )
        self.asr_results = Counter(
            "ivr_asr_results", "Recognition results by step and kind", ["step", "kind"], registry=r
        )
        self.containment = Gauge(
            "ivr_self_service_containment_ratio",
            "Share of finished calls resolved without a person",
            registry=r,
        )
        self._finished = 0
        self._resolved = 0
        self.no_match = Counter(
            "ivr_no_match", "No-input and no-match events by step", ["step", "kind"], registry=r
        )

    def watch_gc(self) -> None:
        """Time every collection from now on (the media clock sends a packet every 20 ms)."""
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self.gc_pause.labels(str(info["generation"])).observe(time.perf_counter() - self._gc_started)
            self._gc_started = 0.0

    def flow_finished(self, flow: str, result: Any) -> None:
        """Count the call's outcome and every no-input/no-match by the step it happened in."""
        self.calls.labels(flow, result.outcome).inc()
        self._finished += 1
        self._resolved += result.outcome == "resolved"
        self.containment.set(self._resolved / self._finished)
        for record in result.path.as_list():
            for heard in record.get("inputs", []):
                if heard.get("kind") in ("noinput", "nomatch"):
                    self.no_match.labels(f"{flow}/{record['step']}", heard["kind"]).inc()

    def waited(self, announced: float, actual: float) -> None:
        self.wait_announced.observe(announced)
        self.wait_actual.observe(actual)

    def speech_heard(self, step: str, result: Any) -> None:
        self.asr_results.labels(step, result.kind).inc()
        if result.latency_ms is not None:
            self.asr_latency.labels(step).observe(result.latency_ms / 1000.0)
