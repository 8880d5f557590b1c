"""The wait estimate: learnt handle times, the queue formula, and a simulated queue."""

from __future__ import annotations

import heapq
import math
import random
import statistics

import pytest

from ivr.handoff.estimator import HandleTimes, estimate_wait


def test_handle_times_start_from_the_prior_and_follow_the_data() -> None:
    ht = HandleTimes(prior=300.0, alpha=0.2, min_samples=10)
    assert ht.mean("billing") == 300.0
    ht.observe("billing", 120.0)
    # One call is not enough to forget the prior: blended 1/10.
    assert ht.mean("billing") == pytest.approx(0.1 * 120 + 0.9 * 300)
    for _ in range(40):
        ht.observe("billing", 120.0)
    assert ht.mean("billing") == pytest.approx(120.0)
    for _ in range(10):
        ht.observe("billing", 240.0)  # a slower afternoon is picked up within a few calls
    assert 200.0 < ht.mean("billing") < 240.0
    ht.observe("billing", -5.0)  # clock trouble is ignored
    assert ht.samples("billing") == 51
    # An unmeasured skill borrows from calls without a skill before the fixed prior.
    ht.observe(None, 60.0)
    assert ht.mean("sales") == ht.mean(None) != 300.0


def test_estimate_grows_with_callers_ahead_and_shrinks_with_agents() -> None:
    assert estimate_wait(0, 3, 1, 300.0).seconds == 0.0
    assert estimate_wait(2, 3, 3, 300.0).seconds == 0.0  # free agents take the callers ahead too
    one = estimate_wait(0, 2, 0, 300.0)
    assert one.seconds == pytest.approx(150.0) and one.upper > one.seconds
    assert estimate_wait(5, 2, 0, 300.0).seconds == pytest.approx(900.0)
    assert estimate_wait(5, 4, 0, 300.0).seconds == pytest.approx(450.0)
    nobody = estimate_wait(3, 0, 0, 300.0)
    assert not nobody.known and math.isinf(nobody.seconds)
    assert nobody.speak("en") == "We cannot estimate the wait right now"


def simulate(
    seed: int, agents: int, arrivals_per_hour: float, aht: float, calls: int
) -> list[tuple[float, float, float]]:
    """An M/M/n FIFO queue; returns (announced, upper, actual wait) for callers who had to wait."""
    rng = random.Random(seed)
    ht = HandleTimes(prior=aht * 1.5)  # a deliberately wrong prior: the estimator must learn
    free_at = [0.0] * agents  # heap of times agents become free
    heapq.heapify(free_at)
    waiting_starts: list[float] = []  # start-of-service times of callers already queued
    t = 0.0
    out = []
    for _ in range(calls):
        t += rng.expovariate(arrivals_per_hour / 3600.0)
        # Callers queued earlier and not yet served at t are "ahead".
        waiting_starts = [s for s in waiting_starts if s > t]
        ahead = len(waiting_starts)
        free = sum(1 for f in free_at if f <= t)
        est = estimate_wait(ahead, agents, free, ht.mean(None))
        start = max(t, heapq.heappop(free_at))
        service = rng.expovariate(1.0 / aht)
        heapq.heappush(free_at, start + service)
        ht.observe(None, service)  # known at the end of the call; fine for the estimate's purpose
        if start > t:
            waiting_starts.append(start)
        if est.seconds > 0 or start > t:
            out.append((est.seconds, est.upper, start - t))
    return out


def test_estimates_match_real_waits_in_a_simulated_queue() -> None:
    # 5 agents, 5-minute calls, 54 calls/hour: 90 % load, long queues.
    runs = simulate(seed=11, agents=5, arrivals_per_hour=54, aht=300.0, calls=6000)
    waited = runs[200:]  # after the learning period
    announced = [a for a, _, _ in waited]
    actual = [w for _, _, w in waited]
    assert len(set(round(a) for a in announced)) > 50  # it is not a constant
    bias = (statistics.fmean(announced) - statistics.fmean(actual)) / statistics.fmean(actual)
    assert abs(bias) < 0.15, bias
    kept = sum(1 for _, upper, w in waited if w <= upper) / len(waited)
    assert kept > 0.85, kept
    # And it tells a long queue from a short one.
    long = [w for a, _, w in waited if a > 600]
    short = [w for a, _, w in waited if 0 < a < 120]
    assert statistics.fmean(long) > 3 * statistics.fmean(short)
