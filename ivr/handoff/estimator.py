"""An honest wait estimate: from the callers ahead, the agents working and measured handle times.

Model
-----
With ``n`` agents working a skill and every agent busy, calls end at a rate of ``n / AHT`` (average
handle time, answer to end of wrap-up). A caller with ``k`` callers ahead (live or callbacks that
kept their place) is served at the ``k + 1``-th call end. If handle times are roughly exponential,
as contact-centre handle times are to a first approximation (the assumption behind Erlang C), the
time to that end is a Gamma(k + 1, AHT / n) variable:

    mean  = (k + 1) * AHT / n
    sd    = sqrt(k + 1) * AHT / n

We announce the mean ("about 5 minutes") and promise an upper bound (mean + z * sd, z = 1.64 for
about 95 %), so a callback promise is one we expect to keep, not one we hope to keep. If an agent
of the right kind is free, the wait is zero. With nobody logged in there is no honest number:
``known`` is false and the flow offers a callback instead of guessing.

Handle times are learnt per skill as an exponentially weighted mean (recent calls count more, so
the estimate follows a busy afternoon), blended with a prior while fewer than ``min_samples`` calls
were measured, so the first caller of the day does not hear "0 minutes".

Nothing reads a clock. The spoken wait (``ivr.wording.times``) rounds up, never down:
"less than 2 minutes" is only said when the mean really is under 2 minutes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ivr.wording.times import speak_duration, unknown_text

Z_PROMISE = 1.64  # one-sided ~95 % for the promise bound


@dataclass
class _Ewma:
    mean: float
    var: float
    count: int


class HandleTimes:
    """Exponentially weighted handle times per skill (``None`` = calls without a skill)."""

    def __init__(self, prior: float = 300.0, alpha: float = 0.1, min_samples: int = 10) -> None:
        if prior <= 0 or not 0 < alpha <= 1 or min_samples < 1:
            raise ValueError("prior > 0, 0 < alpha <= 1, min_samples >= 1")
        self.prior = prior
        self.alpha = alpha
        self.min_samples = min_samples
        self._by_skill: dict[str | None, _Ewma] = {}

    def observe(self, skill: str | None, seconds: float) -> None:
        if seconds < 0 or not math.isfinite(seconds):
            return
        state = self._by_skill.get(skill)
        if state is None:
            self._by_skill[skill] = _Ewma(seconds, 0.0, 1)
            return
        diff = seconds - state.mean
        incr = self.alpha * diff
        state.mean += incr
        state.var = (1 - self.alpha) * (state.var + diff * incr)  # West's EW variance
        state.count += 1

    def samples(self, skill: str | None) -> int:
        state = self._by_skill.get(skill)
        return 0 if state is None else state.count

    def mean(self, skill: str | None) -> float:
        """The handle time to plan with: measured, blended with the prior until enough data."""
        state = self._by_skill.get(skill)
        if state is None:
            # An unmeasured skill borrows from calls without skill before the fixed prior.
            if skill is not None and None in self._by_skill:
                return self.mean(None)
            return self.prior
        weight = min(1.0, state.count / self.min_samples)
        return weight * state.mean + (1 - weight) * self.prior


@dataclass(frozen=True)
class WaitEstimate:
    seconds: float  # expected wait (announced)
    upper: float  # the bound we promise against
    ahead: int
    agents: int
    handle_time: float
    known: bool = True

    def speak(self, language: str) -> str:
        return speak_duration(self.seconds, language) if self.known else unknown_text(language)


def estimate_wait(ahead: int, agents_working: int, agents_free: int, handle_time: float) -> WaitEstimate:
    """The wait of a caller with ``ahead`` callers in front of them for the same agents."""
    if ahead < 0 or agents_working < 0 or agents_free < 0:
        raise ValueError("counts cannot be negative")
    if agents_free > ahead:
        return WaitEstimate(0.0, 0.0, ahead, agents_working, handle_time)
    if agents_working == 0:
        return WaitEstimate(math.inf, math.inf, ahead, 0, handle_time, known=False)
    # Free agents serve the first callers in line at once; the rest wait for call ends.
    need = ahead - agents_free + 1
    rate = agents_working / handle_time
    mean = need / rate
    sd = math.sqrt(need) / rate
    return WaitEstimate(mean, mean + Z_PROMISE * sd, ahead, agents_working, handle_time)
