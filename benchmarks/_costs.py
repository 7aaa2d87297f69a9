"""Issue 4's cost-of-the-machinery scenarios (``check-cpu`` is in ``scenarios``).

* ``submit-5000``: 5,000 submissions through ``as_completed`` vs raw aiohttp POSTs of the
  same bodies, 64 at a time on both sides; the wall time of the submission phase.
* ``memory-100k``: 100,000 pending generations tracked by one client vs one bare asyncio task
  per generation, each in a fresh process (``_memory.py``): RSS growth per generation, and the
  CPU the process uses while nothing is due.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import chuizi_async as ca

from ._common import (
    Figures,
    Metric,
    Repetition,
    Scenario,
    at_most,
    at_most_baseline,
    collected_run,
    equals,
)
from ._sim_process import SimulatorInfo, SimulatorProcess
from .baselines import POOL_SIZE, raw_submissions

__all__ = ["MEMORY", "SUBMIT"]

MODEL = "google/veo-3.1-fast"


# -- submit-5000 -----------------------------------------------------------------------------


async def _ours_submissions(info: SimulatorInfo, bodies: Sequence[Mapping[str, Any]]) -> Figures:
    """``as_completed(bodies)`` on a cold client until every handle is accepted.

    No status check may run meanwhile (first check in an hour), so what is timed is the
    submission path: validation, body, idempotency key, budget slot, the POST (at most 64 at
    once: the batch has as many workers as the pool has connections), parsing, the handle,
    the poller's heap.
    """
    n = len(bodies)
    policy = ca.PollPolicy(first_poll_after=3600.0)
    async with ca.Client(
        info.api_key,
        base_url=info.base_url,
        poll=policy,
        limits=ca.Limits(max_connections=POOL_SIZE),
    ) as client:
        cpu0, t0 = time.process_time(), time.monotonic()
        async with client.as_completed(bodies) as results:
            # The batch has no event for "all accepted": a look every millisecond at a
            # counter (a submission counts once its handle is registered). Nothing on the
            # request path measures: the raw side has no instrument either.
            while client.stats.submissions < n:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
            accepted = len(results.accepted)
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "cpu_us_per_submission": cpu / n * 1e6,
            "per_s": n / wall,
            "accepted": float(accepted),
            "status_checks": float(client.stats.status_checks),
            "requests": float(client.stats.requests),
        }


async def _raw_submissions(info: SimulatorInfo, bodies: Sequence[Mapping[str, Any]]) -> Figures:
    n = len(bodies)
    cpu0, t0 = time.process_time(), time.monotonic()
    ids = await raw_submissions(info.base_url, info.api_key, [dict(b) for b in bodies], POOL_SIZE)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_us_per_submission": cpu / n * 1e6,
        "per_s": n / wall,
        "accepted": float(len(set(ids))),
        "status_checks": 0.0,
        "requests": float(n),
    }


def _submit_side(bodies: Sequence[Mapping[str, Any]], ours: bool) -> Figures:
    settings: dict[str, Any] = {"auto_complete": False}  # nothing finishes: nothing to check
    with SimulatorProcess(settings) as sim:
        side = _ours_submissions if ours else _raw_submissions
        figures = collected_run(side(sim.info, bodies))
        created = sim.dump()["counters"]["generations_created"]
    figures["created_per_submission"] = created / len(bodies)
    return figures


def run_submit(quick: bool, rep: int) -> Repetition:
    n = 500 if quick else 5000
    bodies = [{"model": MODEL, "prompt": f"clip {i}: a train crossing a bridge"} for i in range(n)]
    # alternate the order so that neither side always runs on a warmer machine
    if rep % 2:
        ours = _submit_side(bodies, ours=True)
        baseline = _submit_side(bodies, ours=False)
    else:
        baseline = _submit_side(bodies, ours=False)
        ours = _submit_side(bodies, ours=True)
    return {"ours": ours, "baseline": baseline, "info": {"n": n, "concurrency": POOL_SIZE}}


SUBMIT = Scenario(
    name="submit-5000",
    summary="submissions, 64 POSTs at a time: as_completed() on a cold client until every "
    "handle is accepted vs raw aiohttp POSTs of the same bodies (asyncio.gather + semaphore)",
    baseline="raw aiohttp POSTs",
    metrics=(
        Metric(
            "wall_s",
            "submission phase, wall (s)",
            "{:.2f}",
            "<= 1.2x baseline",
            at_most_baseline(1.2),
        ),
        Metric("per_s", "submissions per second", "{:.0f}"),
        Metric("cpu_us_per_submission", "client CPU per submission (us)", "{:.0f}"),
        Metric("accepted", "submissions accepted", "{:.0f}"),
        Metric("status_checks", "status checks meanwhile", "{:.0f}", "= 0", equals(0.0)),
        Metric(
            "created_per_submission",
            "generations created per submission",
            "{:.3f}",
            "= 1.0",
            equals(1.0),
        ),
    ),
    run=run_submit,
)


# -- memory-100k -----------------------------------------------------------------------------

_MEMORY_CHILD = Path(__file__).resolve().parent / "_memory.py"


def _memory_side(mode: str, n: int, idle: float) -> Figures:
    done = subprocess.run(
        [sys.executable, str(_MEMORY_CHILD), mode, str(n), str(idle)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"_memory.py {mode} failed:\n{done.stderr[-2000:]}")
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    growth = raw["rss_after"] - raw["rss_before"]
    return {
        "bytes_per_gen": growth / n,
        "rss_growth_mb": growth / 2**20,
        "rss_before_mb": raw["rss_before"] / 2**20,
        "setup_us_per_gen": raw["setup_cpu_s"] / n * 1e6,
        "idle_cpu_ms_per_s": raw["idle_cpu_s"] * 1000 / idle,
        "pending": float(raw["pending"]),
        "requests": float(raw["requests"]),
    }


def run_memory(quick: bool, rep: int) -> Repetition:
    n = 10_000 if quick else 100_000
    idle = 0.5 if quick else 2.0
    ours = _memory_side("ours", n, idle)
    baseline = _memory_side("tasks", n, idle)
    return {"ours": ours, "baseline": baseline, "info": {"n": n, "idle_s": idle}}


MEMORY = Scenario(
    name="memory-100k",
    summary="pending generations, first check due in a day, each side in a fresh "
    "process: client.track() vs one bare asyncio task per generation (sleep, then GET)",
    baseline="one task per generation",
    metrics=(
        Metric(
            "bytes_per_gen", "RSS growth per generation (bytes)", "{:.0f}", "<= 1024", at_most(1024)
        ),
        Metric("rss_growth_mb", "RSS growth (MiB)", "{:.1f}"),
        Metric("rss_before_mb", "RSS before (MiB)", "{:.1f}"),
        Metric(
            "idle_cpu_ms_per_s",
            "CPU while nothing is due (ms per s)",
            "{:.2f}",
            "<= 1 ms/s (~0)",
            at_most(1.0),
        ),
        Metric("setup_us_per_gen", "CPU to start tracking, per generation (us)", "{:.1f}"),
        Metric("pending", "pending after the idle period", "{:.0f}"),
        Metric("requests", "requests sent", "{:.0f}", "= 0", equals(0.0)),
    ),
    run=run_memory,
)
