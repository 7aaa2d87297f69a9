"""Issue 4's scheduling and pacing scenarios, each side by side with one 10 s loop per generation.

* ``adaptive-15-25s``, ``adaptive-40-80s``, ``adaptive-2-5min``: 300 generations of one model
  whose completion times a cold client has never seen (and that its catalogue prior, 45 s,
  does not describe), submitted at once. Targets: no more status checks per generation than
  the loops, at most half their median detection lag.
* ``paced-40rps``: 600 generations under a server-side limit of 40 requests per (real) second
  over all requests, ``Retry-After: 1`` beyond, no ``X-RateLimit-*`` headers. Targets: under
  10% of the requests answered 429, every generation completes, nothing submitted twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

import chuizi_async as ca

from ._common import (
    CREATED,
    PROVIDER_INTERVAL,
    RESOLVED,
    Metric,
    Repetition,
    Scenario,
    at_most,
    at_most_baseline,
    equals,
    side_loops,
    side_ours,
)

__all__ = ["ADAPTIVE", "PACED"]

MODEL = "google/veo-3.1-fast"
"""Catalogue prior 45 s: not the truth of any distribution below (nor its middle but one)."""

_BASELINE = "one loop per generation"


# -- adaptive-* ------------------------------------------------------------------------------


@attrs.frozen
class Distribution:
    """Completion times uniform in ``[low, high]`` server seconds, compressed by ``speed``.

    The speeds keep the baseline's 300 loops at 300-1,200 requests/s, well within what the
    simulator serves without queueing, and a run of each side under ~8 s.
    """

    name: str
    low: float
    high: float
    speed: float
    quick_speed: float


DISTRIBUTIONS = (
    Distribution("15-25s", 15.0, 25.0, speed=10.0, quick_speed=100.0),
    Distribution("40-80s", 40.0, 80.0, speed=20.0, quick_speed=100.0),
    Distribution("2-5min", 120.0, 300.0, speed=40.0, quick_speed=200.0),
)


def _run_adaptive(dist: Distribution) -> Callable[[bool, int], Repetition]:
    def run(quick: bool, rep: int) -> Repetition:
        n = 60 if quick else 300
        speed = dist.quick_speed if quick else dist.speed
        requests = [{"model": MODEL, "prompt": f"clip {i}: a kite over dunes"} for i in range(n)]
        settings: dict[str, Any] = {
            "speed": speed,
            "completion_times": {MODEL: [dist.low, dist.high]},
            "seed": 4000 + rep,
        }
        # A fresh simulator and a cold client for each side (side_ours opens a new Client).
        ours = side_ours(settings, requests, ca.PollPolicy(), speed)
        baseline = side_loops(settings, requests, PROVIDER_INTERVAL / speed, speed)
        return {"ours": ours, "baseline": baseline, "info": {"n": n, "speed": speed}}

    return run


def _adaptive(dist: Distribution) -> Scenario:
    return Scenario(
        name=f"adaptive-{dist.name}",
        summary=f"a batch of {MODEL} (catalogue prior 45 s) taking {dist.low:g}-{dist.high:g} s "
        "(uniform, time compressed by speed), submitted at once: a cold client with the default "
        "PollPolicy vs one 10 s loop per generation",
        baseline=_BASELINE,
        metrics=(
            Metric(
                "checks_per_gen",
                "status checks per generation",
                "{:.2f}",
                "<= baseline",
                at_most_baseline(1.0),
            ),
            Metric("max_checks_one_gen", "most checks of one generation", "{:.0f}"),
            Metric(
                "lag_median_ms",
                "detection lag, median (ms)",
                "{:.1f}",
                "<= 0.5x baseline",
                at_most_baseline(0.5),
            ),
            Metric("lag_median_uncompressed_s", "  same, uncompressed (s)", "{:.1f}"),
            Metric("lag_p90_ms", "detection lag, p90 (ms)", "{:.1f}"),
            Metric("lag_p90_uncompressed_s", "  same, uncompressed (s)", "{:.1f}"),
            Metric("wall_s", "wall time (s)"),
            Metric("cpu_s", "client CPU (s)"),
            Metric("requests", "requests seen by the server", "{:.0f}"),
            Metric("server_429", "429 answers (no rate limit here)", "{:.0f}", "= 0", equals(0.0)),
            CREATED,
            RESOLVED,
        ),
        run=_run_adaptive(dist),
    )


ADAPTIVE = tuple(_adaptive(dist) for dist in DISTRIBUTIONS)


# -- paced-40rps -----------------------------------------------------------------------------

PACED_LIMIT = 40
PACED_SPEED = 10.0
PACED_TIMES = (30.0, 60.0)  # server seconds: 3-6 s at speed 10
PACED_CUTOFF = 30.0
PACED_LEARNING = 10.0
"""Seconds after the first request that count as the learning phase (for one row only)."""


def run_paced(quick: bool, rep: int) -> Repetition:
    n = 40 if quick else 600
    speed = PACED_SPEED
    bound = 2 * n / PACED_LIMIT  # every submission + one check per generation, at 40/s
    requests = [{"model": MODEL, "prompt": f"clip {i}: a paper boat"} for i in range(n)]
    settings: dict[str, Any] = {
        "speed": speed,
        "completion_times": {MODEL: list(PACED_TIMES)},
        "seed": 5000 + rep,
        "rate_limit": {"limit": PACED_LIMIT, "window": 1.0, "headers": False, "retry_after": True},
        "retry_after_whole_seconds": True,  # "Retry-After: 1", as the issue describes
    }
    policy = ca.PollPolicy()
    ours = side_ours(settings, requests, policy, speed, learning=PACED_LEARNING)
    # The loops storm (about 90% of their requests refused) and would take minutes to finish:
    # they are cut off after PACED_CUTOFF seconds, by which time their 429 share is plain.
    baseline = side_loops(
        settings,
        requests,
        PROVIDER_INTERVAL / speed,
        speed,
        timeout=3.0 if quick else PACED_CUTOFF,
        learning=PACED_LEARNING,
    )
    for side in (ours, baseline):
        side["bound_s"] = bound
        side["wall_over_bound"] = side["wall_s"] / bound
        side["admitted_per_s"] = (side["requests"] - side["server_429"]) / side["wall_s"]
    return {"ours": ours, "baseline": baseline, "info": {"n": n, "speed": speed}}


PACED = Scenario(
    name="paced-40rps",
    summary=f"a batch of {MODEL} ({PACED_TIMES[0]:g}-{PACED_TIMES[1]:g} s, compressed by "
    f"speed) under a limit of {PACED_LIMIT} requests per real second over all "
    "requests (sliding 1 s window, Retry-After: 1, no X-RateLimit headers): generate_many vs "
    "one 10 s loop per generation (cut off after 30 s)",
    baseline=_BASELINE,
    metrics=(
        Metric("share_429", "share of requests answered 429", "{:.1%}", "< 10%", at_most(0.0999)),
        Metric("share_429_after_learning", "  same, requests sent after the first 10 s", "{:.1%}"),
        Metric("server_429", "429 answers", "{:.0f}"),
        Metric("requests", "requests seen by the server", "{:.0f}"),
        Metric("admitted_per_s", "requests admitted per second", "{:.1f}"),
        Metric("learned_rate", "rate the budget learned (req/s, at the end)", "{:.1f}"),
        Metric("wall_s", "wall time (s)"),
        Metric("bound_s", "lower bound (2N / 40 req/s, s)"),
        Metric("wall_over_bound", "wall / bound", "{:.2f}"),
        Metric("checks_per_gen", "status checks per generation (429s incl.)", "{:.2f}"),
        Metric("submit_requests_per_gen", "submit requests per generation (429s incl.)", "{:.3f}"),
        Metric("lag_median_uncompressed_s", "detection lag, median, uncompressed (s)", "{:.1f}"),
        Metric("unfinished", "loops unfinished at the cut-off", "{:.0f}"),
        Metric("cpu_s", "client CPU (s)"),
        CREATED,
        RESOLVED,
    ),
    run=run_paced,
)
