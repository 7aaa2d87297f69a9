"""What the scenarios share: the table's rows (``Metric``), a ``Scenario``, and the two sides
of a batch comparison (``side_ours``: a cold client's ``generate_many``; ``side_loops``: one
10 s loop per generation), each against a fresh simulator process.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import attrs

import chuizi_async as ca

from ._measure import Recorder, RecordingTransport, Truth, detection_lags, median, percentile
from ._sim_process import SimulatorInfo, SimulatorProcess
from .baselines import POOL_SIZE, LoopResult, run_loops

__all__ = [
    "CREATED",
    "PROVIDER_INTERVAL",
    "RESOLVED",
    "Figures",
    "Metric",
    "OursRun",
    "Repetition",
    "Scenario",
    "at_most",
    "at_most_baseline",
    "collected_run",
    "equals",
    "generate_many",
    "lag_figures",
    "loop_outcome",
    "ours_outcome",
    "server_figures",
    "side_loops",
    "side_ours",
    "true_outcomes",
]

Figures = dict[str, float]
Repetition = dict[str, Figures]  # "ours", "baseline", "info"

PROVIDER_INTERVAL = 10.0
"""The provider's example checks every 10 s (uncompressed)."""

_T = TypeVar("_T")


def collected_run(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(main)`` after a full collection: a side of a CPU comparison inherits
    neither the garbage of what ran before it in this process nor the full collection that
    garbage brings on (13-25 ms, landing on either side by the process's history)."""
    gc.collect()
    return asyncio.run(main)


@attrs.frozen
class Metric:
    """One row of the table: ``key`` in the figures of both sides (when the side has it).

    ``target(ours, baseline)`` says whether a repetition meets the target named ``goal``.
    """

    key: str
    label: str
    fmt: str = "{:.2f}"
    goal: str = ""
    target: Callable[[float, float | None], bool] | None = None


@attrs.frozen
class Scenario:
    name: str
    summary: str
    baseline: str
    metrics: Sequence[Metric]
    run: Callable[[bool, int], Repetition]  # (quick, repetition index) -> figures


# -- shared pieces ---------------------------------------------------------------------------


@attrs.frozen
class OursRun:
    results: list[ca.Video | BaseException]
    recorder: Recorder
    wall: float
    cpu: float
    stats: ca.ClientStats
    poller_max_in_flight: int
    poller_checks: int
    learned_rate: float | None


async def generate_many(
    info: SimulatorInfo,
    requests: Sequence[Mapping[str, Any]],
    policy: ca.PollPolicy,
    client_options: Mapping[str, Any] | None = None,
) -> OursRun:
    """A cold client, unconfigured but for the compressed policy (and ``client_options``);
    ``generate_many`` timed."""
    recorder = Recorder()
    transport = RecordingTransport(recorder, max_connections=POOL_SIZE)
    batch = [ca.GenerationRequest(**request) for request in requests]
    async with ca.Client(
        info.api_key,
        base_url=info.base_url,
        poll=policy,
        transport=transport,
        **(client_options or {}),
    ) as client:
        cpu0, t0 = time.process_time(), time.monotonic()
        results = await client.generate_many(batch, return_exceptions=True)
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
        return OursRun(
            results=results,
            recorder=recorder,
            wall=wall,
            cpu=cpu,
            stats=attrs.evolve(client.stats),
            poller_max_in_flight=client.poller_stats.max_in_flight_seen,
            poller_checks=client.poller_stats.checks,
            learned_rate=client.budget.rate,
        )


def true_outcomes(
    requests: Sequence[Mapping[str, Any]],
    outcomes: Sequence[tuple[str, str | None, str | None]],
    dump: Mapping[str, Any],
) -> int:
    """How many requests resolved to the simulator's own record of their one generation.

    ``outcomes[i]`` is (``"completed"``/``"failed"``/other, generation id, video url).
    """
    truths = Truth.by_prompt(dump)
    right = 0
    for request, (state, gen_id, url) in zip(requests, outcomes, strict=True):
        found = truths.get(request["prompt"], [])
        if len(found) != 1 or found[0].id != gen_id or found[0].status != state:
            continue
        if state == "completed" and not (url or "").endswith(f"/{gen_id}.mp4"):
            continue
        right += 1
    return right


def ours_outcome(result: ca.Video | BaseException) -> tuple[str, str | None, str | None]:
    if isinstance(result, ca.Video):
        return "completed", result.id, result.url
    if isinstance(result, ca.GenerationFailed):
        return "failed", result.generation_id, None
    return f"error: {result!r}", None, None


def loop_outcome(result: LoopResult | None) -> tuple[str, str | None, str | None]:
    if result is None:
        return "unfinished", None, None
    return result.status, result.id, result.video_url


def server_figures(dump: Mapping[str, Any], n: int) -> Figures:
    counters = dump["counters"]
    return {
        "checks_per_gen": counters["status_checks"] / n,
        "max_checks_one_gen": float(counters["max_checks_of_one_id"]),
        "submit_requests_per_gen": counters["submissions"] / n,
        "idempotent_replays": float(counters["idempotent_replays"]),
        "created_per_gen": counters["generations_created"] / n,
        "requests": float(counters["requests"]),
        "server_429": float(counters["rate_limited"]),
        "share_429": counters["rate_limited"] / max(1, counters["requests"]),
    }


def lag_figures(detected: Mapping[str, float], dump: Mapping[str, Any], speed: float) -> Figures:
    lags = detection_lags(detected, dump)
    return {
        "lag_median_ms": median(lags) * 1000,
        "lag_p90_ms": percentile(lags, 0.9) * 1000,
        "lag_median_uncompressed_s": median(lags) * speed,
        "lag_p90_uncompressed_s": percentile(lags, 0.9) * speed,
    }


def side_ours(
    settings: dict[str, Any],
    requests: Sequence[Mapping[str, Any]],
    policy: ca.PollPolicy,
    speed: float,
    window: float | None = None,
    learning: float | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> Figures:
    """A cold client's ``generate_many`` against a fresh simulator; ``window``: count the 429s
    after the first window; ``learning``: the share of 429s among requests sent after it."""
    n = len(requests)
    with SimulatorProcess(settings) as sim:
        options = {"time_scale": speed, **(client_options or {})}  # the simulator's clock
        run = asyncio.run(generate_many(sim.info, requests, policy, options))
        dump = sim.dump()
    recorder = run.recorder
    figures = {
        "wall_s": run.wall,
        "cpu_s": run.cpu,
        "resolved_true": true_outcomes(requests, [ours_outcome(r) for r in run.results], dump) / n,
        "max_in_flight": float(recorder.max_in_flight),
        "poller_max_in_flight": float(run.poller_max_in_flight),
        "client_checks_per_gen": run.stats.status_checks / n,
        "client_retries": float(run.stats.retries),
        "client_429": float(recorder.count_429()),
        **server_figures(dump, n),
        **lag_figures(recorder.last_status_answer(), dump, speed),
    }
    if run.learned_rate is not None:
        figures["learned_rate"] = run.learned_rate
    return _windowed(figures, recorder, window, learning)


def _windowed(
    figures: Figures, recorder: Recorder, window: float | None, learning: float | None
) -> Figures:
    if window is not None:
        figures["client_429_after_first_window"] = float(
            recorder.count_429(after=recorder.first_sent + window)
        )
    if learning is not None:
        figures["share_429_after_learning"] = recorder.share_429(
            sent_after=recorder.first_sent + learning
        )
    return figures


def side_loops(
    settings: dict[str, Any],
    requests: Sequence[Mapping[str, Any]],
    interval: float,
    speed: float,
    window: float | None = None,
    timeout: float | None = None,
    learning: float | None = None,
) -> Figures:
    """One loop per generation (``baselines.run_loops``) against a fresh simulator; a loop
    still running after ``timeout`` seconds is cancelled and counted as unfinished."""
    n = len(requests)
    recorder = Recorder()
    with SimulatorProcess(settings) as sim:
        info = sim.info
        cpu0, t0 = time.process_time(), time.monotonic()
        results = asyncio.run(
            run_loops(
                info.base_url,
                info.api_key,
                [dict(r) for r in requests],
                interval,
                recorder,
                timeout=timeout,
            )
        )
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
        dump = sim.dump()
    detected = {r.id: r.detected_at for r in results if r is not None}
    figures = {
        "wall_s": wall,
        "cpu_s": cpu,
        "unfinished": float(sum(1 for r in results if r is None)),
        "resolved_true": true_outcomes(requests, [loop_outcome(r) for r in results], dump) / n,
        "max_in_flight": float(recorder.max_in_flight),
        "client_429": float(recorder.count_429()),
        **server_figures(dump, n),
        **lag_figures(detected, dump, speed),
    }
    return _windowed(figures, recorder, window, learning)


# -- targets ---------------------------------------------------------------------------------


def equals(value: float) -> Callable[[float, float | None], bool]:
    return lambda ours, _: abs(ours - value) < 1e-9


def at_most(value: float) -> Callable[[float, float | None], bool]:
    return lambda ours, _: ours <= value


def at_most_baseline(factor: float) -> Callable[[float, float | None], bool]:
    return lambda ours, base: base is not None and ours <= factor * base


CREATED = Metric(
    "created_per_gen", "generations created per request", "{:.3f}", "= 1.0", equals(1.0)
)
RESOLVED = Metric(
    "resolved_true", "handles resolved to their true outcome", "{:.1%}", "= 100%", equals(1.0)
)
