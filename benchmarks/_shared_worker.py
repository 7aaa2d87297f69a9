"""One worker of a service sharing one API key: a client process for ``shared-key-4proc``.

::

    python benchmarks/_shared_worker.py '{"base_url": ..., "api_key": ..., "prompts": [...],
                                         "model": ..., "speed": 60, "start_at": ..., "timeout": 60}'

waits until ``start_at`` (a ``time.monotonic()`` value: the workers of one run start together),
then asks for one video per prompt, each with ``client.generate`` (as a service's request
handlers would), and prints one JSON line: how many completed within ``timeout`` seconds and
when the last of them did (seconds after ``start_at``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import chuizi_async as ca
from benchmarks._sim_process import steady_socket_reads

__all__ = ["main"]


async def _work(job: dict[str, Any]) -> dict[str, float]:
    scale = float(job["speed"])
    async with ca.Client(job["api_key"], base_url=job["base_url"], time_scale=scale) as client:
        await asyncio.sleep(max(0.0, float(job["start_at"]) - time.monotonic()))
        start = time.monotonic()
        last = start
        tasks = [
            asyncio.create_task(client.generate(job["model"], prompt)) for prompt in job["prompts"]
        ]
        done, pending = await asyncio.wait(tasks, timeout=float(job["timeout"]))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        completed = 0
        failures: dict[str, int] = {}
        for task in done:
            if not task.cancelled() and task.exception() is None:
                completed += 1
            elif not task.cancelled():
                exc = task.exception()
                name = f"{type(exc).__name__}: {str(exc)[:120]}"
                failures[name] = failures.get(name, 0) + 1
        if failures:
            print(json.dumps({"failures": failures}), file=sys.stderr)
        if done:
            last = time.monotonic() if not pending else start + float(job["timeout"])
        return {
            "completed": float(completed),
            "wall_s": last - start,
            "requests": float(client.stats.requests),
            "client_429": float(client.stats.rate_limited),
        }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    steady_socket_reads()  # as the benchmark's own process reads
    result = asyncio.run(_work(json.loads(args[0])))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
