"""Memory and idle CPU of many pending generations, measured in a fresh process of its own.

::

    python benchmarks/_memory.py ours 100000 2.0
    python benchmarks/_memory.py tasks 100000 2.0

creates ``N`` generation ids first (both sides need them), measures the resident set size
(``VmRSS``), then makes every id pending and measures it again; then idles ``IDLE`` seconds
and measures the process CPU time spent meanwhile. Prints one JSON line.

* ``ours``: one ``Client``, ``client.track(id)`` for each id with a first check due in a day
  (``PollPolicy(first_poll_after=86400)``), so no request is sent: what is measured is the
  tracking (the handle, the poller's heap entry and index). The handles are kept, as a user
  keeps them.
* ``tasks``: the hand-written way: one bare asyncio task per id running
  ``baselines.wait_for_one`` (sleep a day, then GET), all on one ``aiohttp`` session; the tasks
  are kept. Each task has run to its first ``sleep`` before the second measurement.

Nothing listens at the base URL: neither side may send a request (``requests`` says how many
ours sent).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import chuizi_async as ca
from benchmarks.baselines import open_session, wait_for_one

__all__ = ["main", "rss"]

BASE_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing may be sent
MODEL = "google/veo-3.1-fast"
FAR = 86400.0  # the first check is due in a day


def rss() -> int:
    """This process's resident set size in bytes (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _settled_rss() -> int:
    gc.collect()
    return rss()


async def _idle(seconds: float) -> float:
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    return time.process_time() - cpu0


async def ours(ids: list[str], idle: float) -> dict[str, Any]:
    policy = ca.PollPolicy(first_poll_after=FAR, give_up_after=2 * FAR)
    async with ca.Client("sk-bench", base_url=BASE_URL, poll=policy) as client:
        await asyncio.sleep(0.05)  # the poller task is up and asleep
        before = _settled_rss()
        cpu0 = time.process_time()
        handles = [client.track(gen_id, model=MODEL) for gen_id in ids]
        await asyncio.sleep(0)  # the poller looks at its heap once
        setup_cpu = time.process_time() - cpu0
        after = _settled_rss()
        idle_cpu = await _idle(idle)
        pending = len(client.pending)
        requests = client.stats.requests
        del handles
    return {
        "rss_before": before,
        "rss_after": after,
        "setup_cpu_s": setup_cpu,
        "idle_cpu_s": idle_cpu,
        "pending": pending,
        "requests": requests,
    }


async def tasks(ids: list[str], idle: float) -> dict[str, Any]:
    async with open_session("sk-bench") as session:
        await asyncio.sleep(0.05)
        before = _settled_rss()
        cpu0 = time.process_time()
        running = [asyncio.create_task(wait_for_one(session, BASE_URL, i, FAR)) for i in ids]
        await asyncio.sleep(0)  # every task runs to its first sleep
        setup_cpu = time.process_time() - cpu0
        after = _settled_rss()
        idle_cpu = await _idle(idle)
        pending = sum(1 for task in running if not task.done())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    return {
        "rss_before": before,
        "rss_after": after,
        "setup_cpu_s": setup_cpu,
        "idle_cpu_s": idle_cpu,
        "pending": pending,
        "requests": 0,
    }


def main(argv: list[str] | None = None) -> None:
    mode, n_text, idle_text = sys.argv[1:4] if argv is None else argv
    n, idle = int(n_text), float(idle_text)
    ids = [f"gen-{i:016x}" for i in range(n)]
    side = {"ours": ours, "tasks": tasks}[mode]
    figures = asyncio.run(side(ids, idle))
    figures.update(n=n, idle_s=idle, pid=os.getpid())
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
