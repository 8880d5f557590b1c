"""The real-caller soak's table and verdict, from its per-window rows.

A row (bench/real_soak.py) is one window's figures: the wire's (bench/soak_window.py: calls,
setup, RTP spacing, the longest gap inside a prompt and between prompts, key end -> BYE), the
server's (CPU share, RSS), SIPp's counters, and the collector's pauses and the stalls in that
window (bench/soak_metrics.py), plus the window's longest pauses inside prompts.

The verdict answers the issue's questions: did the calls all complete, does memory stay flat,
what was the longest gap inside a prompt and was it within the target, how long were the
collector's pauses, and for the worst gaps whether the collector or the stall watch saw
something at that moment (a hint at the cause, not a proof: a collection is known to within a
histogram bucket and a scrape interval).

Pure: rows, scrapes and log lines in, text out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.soak_metrics import GENERATIONS, STALLED, Scrape, StallLine, pauses_between, scrapes_around
from bench.soak_window import PAUSE_MS, PAUSES_KEPT, Pause, Window

TARGET_MS = 60.0  # the bound on the longest gap inside a prompt
FRAME_MS = 20.0
GC_LAST_BOUND_MS = 200.0  # ivr_gc_pause_seconds' last finite bucket (ivr/ops/metrics.py)


@dataclass
class WindowRow:
    window: Window
    figures: dict[str, float]
    pauses: list[Pause] = field(default_factory=list)

    def __getitem__(self, name: str) -> float:
        return self.figures.get(name, math.nan)


# How a group of windows sums up each figure: counts add up, the longest is the longest, RSS is
# the last window's; percentiles cannot be merged from percentiles, so a group shows its worst.
_ADDED = {"calls", "completed", "failed", "sipp_succeeded", "sipp_failed", "stamp_jumps", "seq_gaps"}
_ADDED |= {f"gc{g}_{what}" for g in GENERATIONS for what in ("count", "over_50ms", "total_ms")}
_ADDED |= {"stalls_logged", "stalls_timed"}
_LAST = {"rss_mb"}
_MEAN = {"cpu_core_share", "machine_busy_cores"}


def merged(rows: Sequence[WindowRow]) -> WindowRow:
    """Several windows as one row (for a table of an hour in 5-minute lines)."""
    first, last = rows[0].window, rows[-1].window
    names = {name for row in rows for name in row.figures}
    figures = {}
    for name in names:
        values = np.array([row[name] for row in rows], dtype=float)
        known = values[~np.isnan(values)]
        if not len(known):
            figures[name] = math.nan
        elif name in _ADDED:
            figures[name] = float(known.sum())
        elif name in _LAST:
            figures[name] = float(values[-1])
        elif name in _MEAN:
            figures[name] = float(known.mean())
        else:
            figures[name] = float(known.max())
    window = Window(first.index, first.start, last.end, last.until)
    return WindowRow(
        window, figures, sorted((p for r in rows for p in r.pauses), key=lambda p: -p.longest_ms)
    )


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _bound(ms: float) -> str:
    """A bucket bound as the longest pause: '-' for none, '> 200' beyond the last bound."""
    if ms == 0 or math.isnan(ms):
        return "-"
    return f"> {GC_LAST_BOUND_MS:.0f}" if math.isinf(ms) else f"<= {ms:.0f}"


def _minute(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f}" if abs(minutes - round(minutes)) < 1e-6 else f"{minutes:.1f}"


def _up_to(ms: float) -> str:
    return f"of over {GC_LAST_BOUND_MS:.0f} ms" if math.isinf(ms) else f"of up to {ms:.0f} ms"


def _line(label: str, row: WindowRow, begin: float) -> str:
    w = row.window
    gc_counts = " / ".join(f"{row[f'gc{g}_count']:.0f}" for g in GENERATIONS)
    gc_longest = " / ".join(_bound(row[f"gc{g}_max_ms"]) for g in GENERATIONS)
    stalls = f"{row['stalls_logged']:.0f}"
    if row["stalls_logged"] > 0:
        stalls += f" ({row['stall_logged_max_ms']:.0f} ms)"
    return (
        f"| {label} | {_minute(w.start - begin)}-{_minute(w.end - begin)} | {row['calls']:.0f} "
        f"| {row['failed']:.0f} / {row['sipp_failed']:.0f} | {_ms(row['setup_p99_ms'])} "
        f"| {_ms(row['spacing_p99_ms'])} / {_ms(row['spacing_p999_ms'])} / {_ms(row['spacing_max_ms'])} "
        f"| {_ms(row['prompt_gap_max_ms'])} | {_ms(row['between_gap_max_ms'])} | {row['stamp_jumps']:.0f} "
        f"| {_ms(row['key_to_bye_p99_ms'])} | {row['cpu_core_share']:.2f} "
        f"| {row['machine_busy_cores']:.2f} | {row['rss_mb']:.0f} "
        f"| {gc_counts} | {gc_longest} | {stalls} |"
    )


def worst(rows: Sequence[WindowRow]) -> WindowRow:
    """The window with the longest gap inside a prompt."""
    return max(rows, key=lambda r: -1.0 if math.isnan(r["prompt_gap_max_ms"]) else r["prompt_gap_max_ms"])


def markdown(rows: Sequence[WindowRow], header: str, group: int = 1) -> str:
    """One line per window (or per ``group`` windows), then the worst window on its own."""
    begin = rows[0].window.start
    lines = [
        header,
        "",
        "| window | minutes | calls | failed capture / SIPp | setup p99 ms "
        "| RTP spacing p99 / p99.9 / max ms | longest gap in a prompt ms | between prompts ms "
        "| timestamp jumps | key end -> BYE p99 ms | server CPU (core) | machine busy (cores) | RSS MB "
        "| GC pauses gen 0 / 1 / 2 | longest GC pause gen 0 / 1 / 2 ms | stalls logged |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for at in range(0, len(rows), group):
        part = rows[at : at + group]
        label = (
            f"{part[0].window.index + 1}"
            if len(part) == 1
            else f"{part[0].window.index + 1}-{part[-1].window.index + 1}"
        )
        lines.append(_line(label, merged(part), begin))
    bad = worst(rows)
    lines.append(_line(f"worst: {bad.window.index + 1}", bad, begin))
    if group > 1:
        lines += [
            "",
            f"Lines of {group} windows show the sum of counts, the last RSS and the worst of the rest.",
        ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Seen:
    """What the collector and the stall watch show around one pause."""

    gc: dict[str, float]  # pauses_between over the scrapes around it ({} when they do not reach)
    scraped: float  # seconds between those scrapes
    stalls: list[StallLine]

    def causes(self, gap_ms: float) -> list[str]:
        """Whatever could have held the sender up this long: a collection whose bucket reaches the
        gap (less the frame it would have waited for anyway), a stall caught then."""
        found = [
            f"a generation {g} collection {_up_to(self.gc[f'gc{g}_max_ms'])}"
            for g in GENERATIONS
            if self.gc.get(f"gc{g}_count", 0) > 0 and self.gc[f"gc{g}_max_ms"] >= gap_ms - FRAME_MS
        ]
        found += [f"a stall caught in {s.where}" for s in self.stalls if s.event == STALLED]
        return found


def seen_around(pause: Pause, scrapes: list[Scrape], stalls: list[StallLine]) -> Seen:
    start = pause.at - pause.longest_ms / 1000
    around = scrapes_around(scrapes, start, pause.at)
    gc = pauses_between(*around) if around is not None else {}
    scraped = around[1].at - around[0].at if around is not None else math.nan
    # The watch logs a stall while it lasts and once it is over, up to a beat or so later.
    near = [s for s in stalls if start - 0.1 <= s.at <= pause.at + 0.5]
    return Seen(gc, scraped, near)


def verdict(
    rows: Sequence[WindowRow],
    scrapes: list[Scrape],
    stalls: list[StallLine],
    *,
    alive: bool,
    target_ms: float = TARGET_MS,
    shown: int = 3,
) -> str:
    begin = rows[0].window.start
    total = merged(rows)
    first, last = rows[0], rows[-1]
    out = [
        f"Server alive at the end: {'yes' if alive else 'NO'}. Calls: {total['calls']:.0f} placed "
        f"(capture), {total['completed']:.0f} completed, failed: {total['failed']:.0f} by the capture, "
        f"{total['sipp_failed']:.0f} by SIPp.",
        f"Memory: RSS {first['rss_mb']:.0f} MB after the first window, {last['rss_mb']:.0f} MB after "
        f"the last ({last['rss_mb'] - first['rss_mb']:+.0f} MB{_slope(rows)}), "
        f"peak {total['rss_peak_mb']:.0f} MB.",
    ]
    bad = worst(rows)
    gap = bad["prompt_gap_max_ms"]
    if math.isnan(gap):
        out.append("Longest gap inside a prompt: none measured (no prompt was captured).")
    else:
        out.append(
            f"Longest gap inside a prompt: {gap:.0f} ms, window {bad.window.index + 1} (minute "
            f"{(bad['prompt_gap_at'] - begin) / 60:.1f}): {'within' if gap <= target_ms else 'OVER'} the "
            f"{target_ms:.0f} ms target. Timestamp jumps inside prompts (the IVR's clock started a new "
            f"timeline after falling behind): {total['stamp_jumps']:.0f}. Longest gap between prompts: "
            + (
                "none (no call played a second prompt)."
                if math.isnan(total["between_gap_max_ms"])
                else f"{total['between_gap_max_ms']:.0f} ms."
            )
        )
    gc = "; ".join(
        f"gen {g}: {total[f'gc{g}_count']:.0f}, longest {_bound(total[f'gc{g}_max_ms'])} ms, "
        f"{total[f'gc{g}_over_50ms']:.0f} over 50 ms"
        for g in GENERATIONS
    )
    out.append(f"Collector pauses (ivr_gc_pause_seconds over the soak): {gc}.")
    out.append(
        f"Stalls: {total['stalls_logged']:.0f} logged by the stall watch (longest "
        f"{total['stall_logged_max_ms']:.0f} ms), {total['stalls_timed']:.0f} in "
        "ivr_event_loop_stall_seconds."
    )
    if not math.isnan(total["analysis_cpu_s"]):
        out.append(
            f"Reading a window's capture (at nice 19, beside the load) took up to "
            f"{total['analysis_cpu_s']:.1f} s of CPU and {total['analysis_peak_mb']:.0f} MB."
        )
    found = sorted((p for r in rows for p in r.pauses), key=lambda p: -p.longest_ms)
    if not found:
        out.append(f"No gap inside a prompt reached {PAUSE_MS:.0f} ms.")
        return "\n".join(out)
    out.append(
        f"Pauses inside prompts of {PAUSE_MS:.0f} ms or more: {len(found)} (each window keeps its "
        f"{PAUSES_KEPT} longest); the longest {min(shown, len(found))}:"
    )
    for pause in found[:shown]:
        row = next(r for r in rows if pause in r.pauses)
        seen = seen_around(pause, scrapes, stalls)
        causes = seen.causes(pause.longest_ms)
        same = (
            f"in the same window: generation 2 collections {row['gc2_count']:.0f} (longest "
            f"{_bound(row['gc2_max_ms'])} ms), stalls logged {row['stalls_logged']:.0f}, the machine "
            f"{row['machine_busy_cores']:.1f} cores busy"
        )
        hint = ", ".join(causes) if causes else "neither the collector nor the stall watch saw anything then"
        out.append(
            f"- minute {(pause.at - begin) / 60:.2f} (window {row.window.index + 1}): "
            f"{pause.longest_ms:.0f} ms in {pause.calls} calls at once; {same}; "
            f"in the {seen.scraped:.0f} s of /metrics around it: {hint}."
        )
    return "\n".join(out)


def _slope(rows: Sequence[WindowRow]) -> str:
    """The RSS trend per hour, fitted over the windows' ends (from three windows on)."""
    if len(rows) < 3:
        return ""
    hours = np.array([(r.window.end - rows[0].window.end) / 3600 for r in rows])
    rss = np.array([r["rss_mb"] for r in rows])
    return f", trend {float(np.polyfit(hours, rss, 1)[0]):+.0f} MB per hour"
