"""The scenarios: each runs our client and its baseline side by side, each against a fresh
simulator process (or in a fresh subprocess), and returns one repetition's figures.

* ``core-300`` (issue 2): 300 generations of mixed models, 5% content-policy failures,
  sub-second completion times; ``generate_many`` vs one 10 s loop per generation.
* ``rate-limited-300`` (issue 7): 300 generations of one model at the documented default
  limits (60 requests a window, 30 submissions a window per model), time compressed.
* ``check-cpu`` (issue 4, first cost target): client CPU of one status check through the
  poller vs raw aiohttp doing the same GET, JSON parse and future resolution.
* ``adaptive-*`` and ``paced-40rps`` (issue 4, scheduling and budget): see ``_scheduling``.
* ``stray-429``, ``fault-campaign-lag`` and ``shared-key-4proc`` (issue 11, 429s not ours
  to pace and resets in every format): see ``_rate_limits``.
* ``submit-5000`` and ``memory-100k`` (issue 4, cost of the machinery): see ``_costs``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import chuizi_async as ca

from ._common import (
    CREATED,
    PROVIDER_INTERVAL,
    RESOLVED,
    Figures,
    Metric,
    Repetition,
    Scenario,
    at_most,
    at_most_baseline,
    collected_run,
    equals,
    side_loops,
    side_ours,
)
from ._costs import MEMORY, SUBMIT
from ._rate_limits import CAMPAIGN_LAG, SHARED_KEY, STRAY
from ._scheduling import ADAPTIVE, PACED
from ._sim_process import SimulatorInfo, SimulatorProcess
from .baselines import raw_status_checks, raw_submissions

__all__ = ["SCENARIOS", "Metric", "Repetition", "Scenario"]


CORE_MODELS = (
    "google/veo-3.1-fast",  # simulator: 30-60 s
    "bedrock/nova-reel-1.1",  # 60-120 s
    "bailian/wan2.6-t2v",  # 30-90 s
    "google/veo-3.1-lite",  # 30-60 s
)
CORE_SPEED = 120.0  # completions in 0.25-1.0 s


def _core_requests(n: int) -> list[dict[str, Any]]:
    requests = []
    for i in range(n):
        subject = "a forbidden scene" if i % 20 == 7 else "a cat watching rain"  # 5% fail
        requests.append(
            {"model": CORE_MODELS[i % len(CORE_MODELS)], "prompt": f"clip {i}: {subject}"}
        )
    return requests


def run_core(quick: bool, rep: int) -> Repetition:
    n = 40 if quick else 300
    speed = CORE_SPEED
    requests = _core_requests(n)
    settings: dict[str, Any] = {"speed": speed, "fail_pattern": "forbidden", "seed": 1000 + rep}
    ours = side_ours(settings, requests, ca.PollPolicy(), speed)
    baseline = side_loops(settings, requests, PROVIDER_INTERVAL / speed, speed)
    return {"ours": ours, "baseline": baseline, "info": {"n": n, "speed": speed}}


CORE = Scenario(
    name="core-300",
    summary="300 mixed-model generations, 5% content-policy failures, completions 0.25-1 s "
    "(speed 120): generate_many vs one 10 s loop per generation (0.083 s compressed)",
    baseline="one loop per generation",
    metrics=(
        Metric("wall_s", "wall time (s)"),
        Metric("cpu_s", "client CPU (s)"),
        Metric(
            "checks_per_gen",
            "status checks per generation",
            goal="<= baseline (issue 4)",
            target=at_most_baseline(1.0),
        ),
        Metric("max_checks_one_gen", "most checks of one generation", "{:.0f}"),
        Metric(
            "lag_median_ms",
            "detection lag, median (ms)",
            "{:.1f}",
            "<= 0.5x baseline (issue 4, info)",
            at_most_baseline(0.5),
        ),
        Metric("lag_median_uncompressed_s", "  same, uncompressed (s)", "{:.1f}"),
        Metric("lag_p90_ms", "detection lag, p90 (ms)", "{:.1f}"),
        Metric("max_in_flight", "max requests outstanding (client)", "{:.0f}"),
        Metric("poller_max_in_flight", "max status checks in flight (poller)", "{:.0f}"),
        Metric("requests", "requests seen by the server", "{:.0f}"),
        Metric(
            "submit_requests_per_gen", "submissions per generation", "{:.3f}", "= 1.0", equals(1.0)
        ),
        CREATED,
        RESOLVED,
    ),
    run=run_core,
)


# -- rate-limited-300 ------------------------------------------------------------------------

RATE_MODEL = "google/veo-3.1-fast"  # simulator: 30-60 s, 0.5-1 s at speed 60
RATE_LIMIT = 60
RATE_PER_MODEL = 30


def run_rate_limited(quick: bool, rep: int) -> Repetition:
    n = 60 if quick else 300
    speed = 120.0 if quick else 60.0
    window = 60.0 / speed
    bound = (n + n) / RATE_LIMIT * window  # every submission + one check per generation
    requests = [
        {"model": RATE_MODEL, "prompt": f"clip {i}: a lighthouse at dusk"} for i in range(n)
    ]
    settings: dict[str, Any] = {
        "speed": speed,
        "seed": 2000 + rep,
        "rate_limit": {
            "limit": RATE_LIMIT,
            "window": window,
            "per_model": RATE_PER_MODEL,
            "headers": True,
            "retry_after": True,
        },
    }
    ours = side_ours(settings, requests, ca.PollPolicy(), speed, window)
    baseline = side_loops(
        settings, requests, PROVIDER_INTERVAL / speed, speed, window, timeout=max(30.0, 10 * bound)
    )
    for side in (ours, baseline):
        side["bound_s"] = bound
        side["wall_over_bound"] = side["wall_s"] / bound
    return {"ours": ours, "baseline": baseline, "info": {"n": n, "speed": speed, "window": window}}


RATE_LIMITED = Scenario(
    name="rate-limited-300",
    summary="300 generations of one model at the documented default limits (60 requests and "
    "30 submissions per model a window), window 60 s compressed to 1 s (speed 60): "
    "generate_many vs one 10 s loop per generation",
    baseline="one loop per generation",
    metrics=(
        Metric("wall_s", "wall time (s)"),
        Metric("bound_s", "lower bound (2N/limit x window, s)"),
        Metric("wall_over_bound", "wall / bound", "{:.2f}", "<= 1.3", at_most(1.3)),
        Metric("checks_per_gen", "status checks per generation", "{:.2f}", "<= 1.5", at_most(1.5)),
        Metric("server_429", "429 answers (server)", "{:.0f}"),
        Metric(
            "client_429_after_first_window",
            "429 answers after the first window",
            "{:.0f}",
            "= 0",
            equals(0.0),
        ),
        Metric("lag_median_ms", "detection lag, median (ms)", "{:.0f}"),
        Metric("lag_median_uncompressed_s", "  same, uncompressed (s)", "{:.1f}"),
        Metric("lag_p90_ms", "detection lag, p90 (ms)", "{:.0f}"),
        Metric("cpu_s", "client CPU (s)"),
        Metric("max_in_flight", "max requests outstanding (client)", "{:.0f}"),
        Metric("requests", "requests seen by the server", "{:.0f}"),
        Metric("unfinished", "loops unfinished at the timeout", "{:.0f}"),
        Metric("submit_requests_per_gen", "submit requests per generation (429s incl.)", "{:.3f}"),
        CREATED,
        RESOLVED,
    ),
    run=run_rate_limited,
)


# -- check-cpu -------------------------------------------------------------------------------


async def _raw_checks(info: SimulatorInfo, ids: Sequence[str]) -> Figures:
    cpu0, t0 = time.process_time(), time.monotonic()
    answers = await raw_status_checks(info.base_url, info.api_key, ids, concurrency=16)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    done = sum(1 for a in answers if a.get("status") == "completed")
    return {"cpu_us_per_check": cpu / len(ids) * 1e6, "wall_s": wall, "checks": float(done)}


async def _poller_checks(info: SimulatorInfo, ids: Sequence[str]) -> Figures:
    policy = ca.PollPolicy(first_poll_after=0.0)  # every id due at once, max_in_flight 16
    async with ca.Client(info.api_key, base_url=info.base_url, poll=policy) as client:
        cpu0, t0 = time.process_time(), time.monotonic()
        handles = [client.track(gen_id) for gen_id in ids]
        # awaited in order, as the baseline awaits its futures (a gather would add a task each)
        videos = [await _outcome(h) for h in handles]
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
        done = sum(1 for v in videos if isinstance(v, ca.Video))
        return {
            "cpu_us_per_check": cpu / client.poller_stats.checks * 1e6,
            "wall_s": wall,
            "checks": float(client.poller_stats.checks),
            "resolved": float(done),
        }


async def _outcome(handle: ca.Generation) -> ca.Video | BaseException:
    try:
        return await handle
    except ca.ChuiziError as exc:
        return exc


async def _submit_all(info: SimulatorInfo, n: int) -> list[str]:
    requests = [{"model": "google/veo-3.1-fast", "prompt": f"clip {i}"} for i in range(n)]
    return await raw_submissions(info.base_url, info.api_key, requests)


def run_check_cpu(quick: bool, rep: int) -> Repetition:
    n = 300 if quick else 3000
    settings: dict[str, Any] = {"speed": 1.0, "default_completion_time": [0.0, 0.0]}
    with SimulatorProcess(settings) as sim:
        ids = asyncio.run(_submit_all(sim.info, n))
        time.sleep(0.05)  # every generation ready
        # alternate the order so that neither side always runs on a warmer process
        if rep % 2:
            ours = collected_run(_poller_checks(sim.info, ids))
            baseline = collected_run(_raw_checks(sim.info, ids))
        else:
            baseline = collected_run(_raw_checks(sim.info, ids))
            ours = collected_run(_poller_checks(sim.info, ids))
    return {"ours": ours, "baseline": baseline, "info": {"n": n}}


CHECK_CPU = Scenario(
    name="check-cpu",
    summary="client CPU per status check of generations already finished: track() + the "
    "poller (16 in flight) vs raw aiohttp GET + json + future (16 in flight)",
    baseline="raw aiohttp",
    metrics=(
        Metric(
            "cpu_us_per_check",
            "client CPU per check (us)",
            "{:.0f}",
            "<= 1.15x baseline (issue 4)",
            at_most_baseline(1.15),
        ),
        Metric("wall_s", "wall time (s)"),
        Metric("checks", "status checks", "{:.0f}"),
    ),
    run=run_check_cpu,
)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        CORE,
        RATE_LIMITED,
        CHECK_CPU,
        *ADAPTIVE,
        PACED,
        STRAY,
        CAMPAIGN_LAG,
        SHARED_KEY,
        SUBMIT,
        MEMORY,
    )
}
