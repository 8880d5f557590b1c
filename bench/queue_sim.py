"""Queue simulation: many callers, few agents, a share taking callbacks (a benchmark, not a test).

Drives the real cores (virtual queue, agent pool, estimator, promise, scheduler, SQLite store in
memory) with simulated time: Poisson arrivals, exponential handle times, customers who answer a
callback with some probability. Reports the share of callbacks made within their promise and how
close the announced waits were to the real ones.

    .venv/bin/python bench/queue_sim.py --agents 6 --per-hour 66 --aht 300 --hours 8 --seed 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import itertools
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivr.handoff.agents import Agent, AgentEvent, AgentPool, AgentState
from ivr.handoff.estimator import HandleTimes, WaitEstimate, estimate_wait
from ivr.handoff.promise import promise_asap
from ivr.handoff.queue import VirtualQueue
from ivr.handoff.scheduler import RetryPolicy, Scheduler
from ivr.store.base import ACTIVE_STATES, Booking, CallbackState
from ivr.store.sqlite import SqliteStore

T0 = 1_750_000_000.0
RING = 15.0  # seconds a customer's phone rings before they answer
NO_ANSWER = 30.0  # seconds before an unanswered callback attempt is given up


def run(args: argparse.Namespace) -> dict[str, float]:
    rng = random.Random(args.seed)
    store = SqliteStore(":memory:")
    pool = AgentPool(
        Agent(
            f"a{i}",
            f"Agent {i}",
            f"sip:a{i}@h",
            frozenset({"en"}),
            frozenset(),
            AgentState.AVAILABLE,
            since=T0,
        )
        for i in range(args.agents)
    )
    queue = VirtualQueue()
    handle = HandleTimes(prior=args.aht * 1.5)  # a wrong prior on purpose: it must learn
    sched = Scheduler(RetryPolicy(attempts=3, spacing=args.spacing))
    events: list[tuple[float, int, str, str]] = []
    seq = itertools.count()
    announced: dict[str, float] = {}
    errors: list[float] = []
    signed: list[float] = []
    live_waits: list[float] = []
    callbacks_booked = 0

    def push(t: float, kind: str, key: str) -> None:
        heapq.heappush(events, (t, next(seq), kind, key))

    def estimate(now: float) -> WaitEstimate:
        return estimate_wait(
            queue.line_length("en", None, now),
            pool.working("en", None),
            pool.available("en", None),
            handle.mean(None),
        )

    def start_service(agent_id: str, now: float, answered_at: float) -> None:
        pool.apply(agent_id, AgentEvent.RING, now)
        pool.apply(agent_id, AgentEvent.ANSWERED, answered_at)
        push(answered_at + rng.expovariate(1.0 / args.aht), "free", agent_id)

    def dispatch(now: float) -> None:
        records = {r.id: r for r in store.list_callbacks(ACTIVE_STATES)}
        sched.sync_queue(queue, records.values())
        for serve in sched.plan(now, queue, pool, records):
            if serve.kind == "live":
                queue.leave(serve.entry)
                start_service(serve.agent, now, now)
                wait = now - float(serve.entry.split(":")[1])
                live_waits.append(wait)
                if serve.entry in announced:
                    errors.append(abs(announced[serve.entry] - wait))
                    signed.append(announced[serve.entry] - wait)
                continue
            assert serve.callback_id is not None and serve.version is not None
            rec = store.claim(serve.callback_id, serve.version, "sim", serve.agent, now, 120.0)
            rec = store.transition(rec.id, "agent_answered", now, owner="sim")
            if rng.random() < args.answer:
                d = sched.after_customer(rec, "answered", now + RING)
                store.transition(rec.id, d.event, now, owner="sim", changes=d.changes)
                queue.leave(serve.entry)
                start_service(serve.agent, now, now + RING)
            else:
                d = sched.after_customer(rec, "no_answer", now + NO_ANSWER)
                store.transition(rec.id, d.event, now, owner="sim", changes=d.changes)
                pool.apply(serve.agent, AgentEvent.RING, now)
                pool.apply(serve.agent, AgentEvent.ANSWERED, now)
                push(now + NO_ANSWER, "free", serve.agent)
                if d.event == "retry":
                    push(float(d.changes["next_attempt_at"]), "tick", "")

    t = T0
    end = T0 + args.hours * 3600
    while t < end:
        t += rng.expovariate(args.per_hour / 3600.0)
        push(t, "arrive", "")
    while events:
        now, _, kind, key = heapq.heappop(events)
        if kind == "arrive":
            est = estimate(now)
            if est.seconds > args.offer_over and rng.random() < args.callback_share:
                promise = promise_asap(dt.datetime.fromtimestamp(now, dt.UTC), None, est)
                number = f"+4930{rng.randrange(10**7):07d}"
                store.book(
                    Booking(
                        number, "en", now, now, promise.deadline.timestamp(), 3, promise_text=promise.text_en
                    ),
                    now,
                )
                callbacks_booked += 1
            else:
                key = f"live:{now!r}"
                queue.join(key, now, "en", None)
                if est.seconds > 0:
                    announced[key] = est.seconds
        elif kind == "free":
            agent = pool.get(key)
            answered = agent.answered_at or now
            pool.apply(key, AgentEvent.HANGUP, now)
            pool.apply(key, AgentEvent.WRAP_UP_DONE, now)
            handle.observe(None, now - answered)
        dispatch(now)

    done = store.list_callbacks()
    connected = [r for r in done if r.state is CallbackState.CONNECTED]
    kept = [r for r in connected if (r.connected_at or 0) <= r.promised_by]
    errors.sort()
    return {
        "callers": len(live_waits) + callbacks_booked,
        "callbacks": callbacks_booked,
        "connected": len(connected),
        "failed": sum(1 for r in done if r.state is CallbackState.FAILED),
        "kept_of_connected": len(kept) / max(1, len(connected)),
        "kept_of_booked": len(kept) / max(1, callbacks_booked),
        "announced": len(errors),
        "mae": statistics.fmean(errors) if errors else 0.0,
        "p90": errors[int(0.9 * (len(errors) - 1))] if errors else 0.0,
        "bias": statistics.fmean(signed) if signed else 0.0,
        "mean_wait": statistics.fmean(live_waits) if live_waits else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=6)
    parser.add_argument("--per-hour", type=float, default=66.0, help="arrivals per hour (Poisson)")
    parser.add_argument("--aht", type=float, default=300.0, help="mean handle time, seconds (exponential)")
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument(
        "--callback-share", type=float, default=0.4, help="share taking a callback when offered"
    )
    parser.add_argument(
        "--offer-over", type=float, default=120.0, help="offer a callback above this wait (s)"
    )
    parser.add_argument("--answer", type=float, default=0.8, help="chance a customer answers a callback")
    parser.add_argument("--spacing", type=float, default=300.0, help="seconds between callback attempts")
    parser.add_argument("--seed", type=int, default=1)
    r = run(parser.parse_args())
    print(
        f"callers {r['callers']:.0f}, callbacks booked {r['callbacks']:.0f}: connected {r['connected']:.0f}, "
        f"failed after 3 attempts {r['failed']:.0f}"
    )
    print(
        f"callbacks within promise: {100 * r['kept_of_connected']:.1f} % of connected, "
        f"{100 * r['kept_of_booked']:.1f} % of booked"
    )
    print(
        f"announced vs real wait ({r['announced']:.0f} callers who waited, "
        f"mean real wait {r['mean_wait']:.0f} s): "
        f"mean abs error {r['mae']:.0f} s, p90 {r['p90']:.0f} s, bias {r['bias']:+.0f} s"
    )


if __name__ == "__main__":
    main()
