"""Collector pauses and event loop stalls of a running ``ivr serve``, from its /metrics and its log.

Two things stop every call's audio at once, and the server measures both (ivr/ops/metrics.py):
``ivr_gc_pause_seconds``, each garbage collection by generation (timed from ``gc.callbacks``),
and ``ivr_event_loop_stall_seconds``, each stall over ``--stall-ms`` that the stall watch saw.
Both histograms are cumulative since the server started, so what happened between two scrapes
is the difference of their bucket counts, and the longest pause in between is known to within a
bucket: it is given as that bucket's upper bound (``inf`` beyond the last one). The JSON log adds
when and where each stall was caught ("event loop stalled", then "event loop stall over" with
how long it lasted); the stall watch can miss a collection, which holds the GIL throughout, and
that is why both sources are read.

Pure: texts and log lines in, figures out; the soak (bench/real_soak.py) does the reading.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.parser import text_string_to_metric_families

GC_PAUSE = "ivr_gc_pause_seconds"
LOOP_STALL = "ivr_event_loop_stall_seconds"
GENERATIONS = ("0", "1", "2")
STALLED = "event loop stalled"
STALL_OVER = "event loop stall over"


@dataclass(frozen=True)
class Histogram:
    """One label set of a Prometheus histogram: cumulative counts per upper bound (the last bound
    is +Inf, its count the number of observations) and the sum of the observations."""

    bounds: tuple[float, ...] = ()
    counts: tuple[float, ...] = ()
    total: float = 0.0

    @property
    def count(self) -> int:
        return round(self.counts[-1]) if self.counts else 0

    def since(self, earlier: Histogram | None) -> Histogram:
        """What was observed after ``earlier``, a scrape of the same histogram before this one
        (None: the label set did not exist yet, as a generation not collected so far)."""
        if earlier is None or not earlier.counts:
            return self
        if earlier.bounds != self.bounds:
            raise ValueError(f"bucket bounds changed between scrapes: {earlier.bounds} -> {self.bounds}")
        counts = tuple(now - before for now, before in zip(self.counts, earlier.counts, strict=True))
        return Histogram(self.bounds, counts, self.total - earlier.total)

    def longest(self) -> float:
        """The upper bound of the lowest bucket that holds every observation: the longest one is
        no longer than this (0.0 with none, inf when one was beyond the last finite bound)."""
        if self.count == 0:
            return 0.0
        for bound, cumulative in zip(self.bounds, self.counts, strict=True):
            if cumulative >= self.counts[-1]:
                return bound
        return math.inf  # unreachable: the +Inf bucket holds them all

    def over(self, seconds: float) -> int:
        """How many observations were longer than ``seconds`` (one of the bucket bounds)."""
        if not self.counts:
            return 0
        if seconds not in self.bounds:
            raise ValueError(f"{seconds} is not a bucket bound of {self.bounds}")
        return round(self.counts[-1] - self.counts[self.bounds.index(seconds)])


def histograms(text: str, name: str, label: str | None = None) -> dict[str, Histogram]:
    """The histogram ``name`` in an exposition text, per value of ``label`` ("" without one)."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            key = sample.labels.get(label, "") if label is not None else ""
            if sample.name == name + "_bucket":
                buckets.setdefault(key, []).append((float(sample.labels["le"]), sample.value))
            elif sample.name == name + "_sum":
                totals[key] = sample.value
    found = {}
    for key, pairs in buckets.items():
        pairs.sort()
        found[key] = Histogram(tuple(b for b, _ in pairs), tuple(c for _, c in pairs), totals.get(key, 0.0))
    return found


@dataclass(frozen=True)
class Scrape:
    """What one read of /metrics says about pauses: the collector's by generation, the stalls'."""

    at: float  # epoch seconds, when the answer came
    gc: Mapping[str, Histogram]
    stalls: Histogram

    @classmethod
    def parse(cls, text: str, at: float) -> Scrape:
        return cls(
            at, histograms(text, GC_PAUSE, "generation"), histograms(text, LOOP_STALL).get("", Histogram())
        )


def pauses_between(earlier: Scrape, later: Scrape) -> dict[str, float]:
    """Collector pauses and stalls between two scrapes, as figures: per generation the number of
    collections, the longest (ms, a bucket bound), how many took over 50 ms and their total ms;
    and the stalls the watch timed."""
    figures: dict[str, float] = {}
    for generation in GENERATIONS:
        now = later.gc.get(generation, Histogram())
        seen = now.since(earlier.gc.get(generation))
        figures[f"gc{generation}_count"] = float(seen.count)
        figures[f"gc{generation}_max_ms"] = 1000 * seen.longest()
        figures[f"gc{generation}_over_50ms"] = float(seen.over(0.05)) if seen.counts else 0.0
        figures[f"gc{generation}_total_ms"] = 1000 * seen.total
    stalls = later.stalls.since(earlier.stalls)
    figures["stalls_timed"] = float(stalls.count)
    figures["stall_timed_max_ms"] = 1000 * stalls.longest()
    return figures


def scrapes_around(scrapes: list[Scrape], start: float, end: float) -> tuple[Scrape, Scrape] | None:
    """The latest scrape before ``start`` and the first after ``end``: what the collector did in
    between includes whatever it did from start to end (None when the scrapes do not reach)."""
    before = [s for s in scrapes if s.at <= start]
    after = [s for s in scrapes if s.at >= end]
    if not before or not after:
        return None
    return before[-1], after[0]


@dataclass(frozen=True)
class StallLine:
    """One line of the stall watch in the server's log."""

    at: float  # epoch seconds
    event: str  # STALLED (caught while stuck) or STALL_OVER
    lasted_ms: float  # NaN for STALLED
    where: str  # the innermost frame, for STALLED


def stall_lines(log: Iterable[Mapping[str, object]]) -> list[StallLine]:
    """The stall watch's lines of a JSON log (structlog: ISO timestamps in UTC)."""
    found = []
    for line in log:
        event = line.get("event")
        if event not in (STALLED, STALL_OVER) or "timestamp" not in line:
            continue
        at = datetime.fromisoformat(str(line["timestamp"])).timestamp()
        lasted = float(str(line["lasted_ms"])) if event == STALL_OVER and "lasted_ms" in line else math.nan
        where = str(line.get("where", "")).split(" <- ")[0].rsplit("/", 1)[-1]
        found.append(StallLine(at, str(event), lasted, where))
    return found


def stalls_between(lines: list[StallLine], start: float, end: float) -> dict[str, float]:
    """The stalls logged from ``start`` to ``end``: how many were caught, the longest that ended."""
    caught = [s for s in lines if s.event == STALLED and start <= s.at < end]
    lasted = [s.lasted_ms for s in lines if s.event == STALL_OVER and start <= s.at < end]
    return {"stalls_logged": float(len(caught)), "stall_logged_max_ms": max(lasted, default=0.0)}
