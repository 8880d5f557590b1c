"""Speaking callers over real SIP: answer latency from the end of the caller's speech.

For each endpointing variant and each level, one ``ivr serve`` process serves the Korean test menu
(tests/flows/korean/menu.yaml, changed only by the variant's options) and N callers
(bench/speech_caller.py, one thread) call it over and over for ``--seconds``: hear the prompt,
stay quiet 1-3 s, say 예약, 아니요 or 상담원 (espeak-ng through G.711, 20 ms packets at real-time
pace), wait for the answer, get hung up on, dial again. As a phone does, every call sends a packet
every 20 ms from the answer to the hang-up; between the words it carries Gaussian room noise at
``--noise-dbfs`` (-55 by default, under the words as well), or digital silence with ``off``.

Reported per level:
- answer latency: from the caller sending its last voiced packet to the first RTP packet of the
  IVR's answer prompt (p50/p95/max), as the caller's phone sees it: closing silence, decoding,
  the flow's step change and the prompt's first 20 ms tick are all in it;
- the server's own figure (``heard speech`` latency_ms: end of speech detected -> result), which
  isolates decoding from the closing silence;
- routed right: the step after the menu (from the server's ``flow finished`` log line for the
  call) is the one the phrase leads to; failures: calls not answered, no answer to the phrase,
  wrong or no route;
- the callers' audio: packets sent against the call's length in 20 ms frames (all calls, and the
  lowest call), and the longest gap between two packets of one call, so the table shows that the
  stream never paused;
- the server's CPU (share of one core).

Variants: ``default`` (600 ms closing silence), ``short`` (``end_silence: 300ms``), ``early``
(``early_match: 200ms``), ``early100`` (``early_match: 100ms``). Target: p95 <= 300 ms with 100
callers.

    python -m bench.speech_calls --levels 10 50 100 --seconds 60 [--variants default,early]
        [--noise-dbfs -55|off] [--append BENCHMARKS.md] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.capacity import _cpu_seconds, _server_pids
from bench.speech_caller import RoomNoise, Turn, Utterance, run_callers
from tests.rtp_probe import percentile
from tests.server import REPO, RunningServer, ivr_server
from tests.speech import spoken

MENU = REPO / "tests" / "flows" / "korean" / "menu.yaml"
ROUTES = {"예약": "booking", "아니요": "declined", "상담원": "agent"}
TARGET_P95_MS = 300.0
# A handset in a quiet room. The VAD reads white noise at -55 dBFS as about -53 dB in its voice
# band, under its -45 dB floor for speech: between the words it is quiet, as it should be.
NOISE_DBFS = -55.0
VARIANTS = {
    "default": "",
    "short": "      end_silence: 300ms\n",
    "early": "      early_match: 200ms\n",
    "early100": "      early_match: 100ms\n",
}
DESCRIBED = {
    "default": "600 ms closing silence (default)",
    "short": "end_silence: 300ms",
    "early": "early_match: 200ms",
    "early100": "early_match: 100ms",
}


def variant_flows(root: Path, variant: str) -> Path:
    """A flows directory holding the test menu with the variant's options added to its menu step."""
    text = MENU.read_text(encoding="utf-8")
    anchor = '      no_match: ["다시 말씀하세요"]\n      escalate: goodbye\n'
    if anchor not in text:
        raise SystemExit(f"{MENU} changed: cannot place the variant's options")
    folder = root / variant
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "menu.yaml").write_text(text.replace(anchor, anchor + VARIANTS[variant]), encoding="utf-8")
    return folder


def server_view(server: RunningServer) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """Per call id: the flow's path, and the recognition result (``heard speech``)."""
    paths: dict[str, list[str]] = {}
    heard: dict[str, dict[str, Any]] = {}
    for line in server.log_lines():
        call_id = str(line.get("call_id", ""))
        if line.get("event") == "flow finished":
            paths[call_id] = [str(s) for s in line.get("steps", [])]  # type: ignore[attr-defined]
        elif line.get("event") == "heard speech":
            heard[call_id] = line
    return paths, heard


def figures(
    turns: list[Turn], server: RunningServer, cpu: float, wall: float, bench_cpu: float
) -> dict[str, Any]:
    paths, heard = server_view(server)
    latencies = [t.latency_ms for t in turns if t.latency_ms is not None]
    right = failures = 0
    reasons: dict[str, int] = {}
    wrong: list[dict[str, Any]] = []  # what went wrong, call by call
    for turn in turns:
        path = paths.get(turn.call_id, [])
        why = turn.failure
        if not why and turn.latency_ms is None:
            why = "no answer heard"
        if not why and (len(path) < 2 or path[1] != ROUTES[turn.phrase]):
            why = "routed wrong" if path else "no call record"
        if why:
            failures += 1
            reasons[why] = reasons.get(why, 0) + 1
            said = heard.get(turn.call_id, {})
            wrong.append(
                {
                    "said": turn.phrase,
                    "why": why,
                    "path": path,
                    "heard": said.get("text"),
                    "kind": said.get("kind"),
                }
            )
        else:
            right += 1
    decoded = [float(h["latency_ms"]) for h in heard.values() if h.get("latency_ms") is not None]
    media = [(t.packets_sent, t.packets_due) for t in turns if t.packets_due]
    sent, due = sum(m[0] for m in media), sum(m[1] or 0.0 for m in media)
    return {
        "calls": len(turns),
        "answered": sum(1 for t in turns if t.status == 200),
        "answers": len(latencies),
        "right": right,
        "failures": failures,
        "reasons": reasons,
        "wrong": wrong,
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
        "latency_max_ms": max(latencies, default=float("nan")),
        "decode_p50_ms": percentile(decoded, 50),
        "decode_p95_ms": percentile(decoded, 95),
        "early": sum(1 for h in heard.values() if h.get("early")),
        "recognitions": len(heard),
        "packets_sent": sent,
        "packets_due": round(due),
        "sent_share": sent / due if due else float("nan"),
        "sent_share_lowest": min((m[0] / (m[1] or 1.0) for m in media), default=float("nan")),
        "longest_gap_ms": max((t.longest_gap_ms for t in turns), default=float("nan")),
        "server_cores": cpu / wall if wall else float("nan"),
        "bench_cores": bench_cpu / wall if wall else float("nan"),
    }


def run_level(
    flows: Path,
    level: int,
    seconds: float,
    utterances: list[Utterance],
    noise: RoomNoise,
    seed: int,
    rtp_base: int,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="speech-calls-") as tmp:
        args = ("--flows", str(flows), "--flow", "menu", "--no-dither")
        with ivr_server(Path(tmp), *args, rtp_base=rtp_base) as server:
            pids = _server_pids(server.process.pid)
            cpu0, bench0, wall0 = _cpu_seconds(pids), time.process_time(), time.monotonic()
            turns = run_callers(server.address, level, seconds, utterances, noise, seed=seed)
            wall = time.monotonic() - wall0
            cpu, bench_cpu = _cpu_seconds(pids) - cpu0, time.process_time() - bench0
            time.sleep(0.5)  # the last call's records reach the log
            return figures(turns, server, cpu, wall, bench_cpu)


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.0f}"  # NaN: no sample


def _share(value: float) -> str:
    return "-" if value != value else f"{100.0 * value:.1f} %"


def noise_level(text: str) -> float | None:
    """``--noise-dbfs``: a level in dBFS, or ``off`` for digital silence packets."""
    if text.lower() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a level in dBFS (e.g. -55) or 'off'") from None


def describe_noise(noise: RoomNoise) -> str:
    between = (
        "digital silence (mu-law 0xFF)"
        if noise.dbfs is None
        else f"Gaussian noise at {noise.dbfs:g} dBFS RMS ({noise.sent_dbfs():.1f} dBFS after G.711), "
        "also under the words"
    )
    return (
        "Callers send audio continuously: one 20 ms G.711 mu-law packet every 20 ms from the answer "
        f"to the hang-up; between the words, {between}."
    )


def markdown(rows: list[dict[str, Any]], command: str, noise: RoomNoise) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"date {time.strftime('%Y-%m-%d %H:%M')}; commit {commit.stdout.strip() or 'unknown'}",
        f"Command: `{command}`",
        describe_noise(noise),
        "",
        "| endpointing | callers | calls | answered | routed right | failures"
        " | answer latency p50 / p95 / max ms | server: speech end detected -> result p50 / p95 ms"
        " | early matches | server CPU (cores) | p95 <= 300 ms"
        " | caller packets sent / due, lowest call; longest gap ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        meets = "yes" if row["failures"] == 0 and row["latency_p95_ms"] <= TARGET_P95_MS else "no"
        lines.append(
            f"| {DESCRIBED[row['variant']]} | {row['level']} | {row['calls']} | {row['answered']} "
            f"| {row['right']} "
            f"| {row['failures']} | {_fmt(row['latency_p50_ms'])} / {_fmt(row['latency_p95_ms'])} / "
            f"{_fmt(row['latency_max_ms'])} | {_fmt(row['decode_p50_ms'])} / {_fmt(row['decode_p95_ms'])} "
            f"| {row['early']} / {row['recognitions']} | {row['server_cores']:.2f} | {meets} "
            f"| {_share(row['sent_share'])}, {_share(row['sent_share_lowest'])}; "
            f"{_fmt(row['longest_gap_ms'])} |"
        )
    lines.append("")
    for variant in dict.fromkeys(r["variant"] for r in rows):
        passing = [
            r["level"]
            for r in rows
            if r["variant"] == variant and r["failures"] == 0 and r["latency_p95_ms"] <= TARGET_P95_MS
        ]
        best = f"{max(passing)} callers" if passing else "none of the levels run"
        lines.append(f"- {DESCRIBED[variant]}: highest level with p95 <= 300 ms and no failure: {best}.")
    for row in rows:
        if row["reasons"]:
            why = ", ".join(f"{n} x {reason}" for reason, n in sorted(row["reasons"].items()))
            lines.append(f"- Failures, {DESCRIBED[row['variant']]}, {row['level']} callers: {why}.")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="how long callers keep dialling, per level"
    )
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--noise-dbfs",
        type=noise_level,
        default=NOISE_DBFS,
        help="room noise the callers send between (and under) their words, dBFS RMS; "
        "'off': digital silence packets (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rtp-base", type=int, default=40000, help="the server's first RTP port")
    parser.add_argument("--append", type=Path, default=None, help="append the table to this file")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    try:
        noise = RoomNoise.at(args.noise_dbfs, seed=args.seed)
    except ValueError as error:
        parser.error(str(error))
    utterances = [Utterance.of(p, spoken(p, lead=0.0, tail=0.0), noise) for p in ROUTES]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="speech-flows-") as root:
        for variant in variants:
            flows = variant_flows(Path(root), variant)
            for level in args.levels:
                row = {"variant": variant, "level": level, "noise_dbfs": args.noise_dbfs}
                row.update(run_level(flows, level, args.seconds, utterances, noise, args.seed, args.rtp_base))
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), flush=True)
    command = "python -m bench.speech_calls " + " ".join(sys.argv[1:])
    table = markdown(rows, command, noise)
    print(table)
    if args.append is not None:
        with open(args.append, "a", encoding="utf-8") as out:
            out.write("\n" + table)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
