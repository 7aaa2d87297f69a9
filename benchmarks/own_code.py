"""``python -m benchmarks.own_code``: what our own code costs a status check and a submission.

``check-cpu`` and ``submit-5000`` time whole requests on a loopback server against raw
aiohttp; most of a request is aiohttp's and the kernel's, and on a noisy machine a change of
a microsecond in our code hides in their scatter. This runs the same two paths over an
in-process transport (no socket, no aiohttp, no simulator): ``track()``, the poller, the send
path, parsing and resolving for a check of a finished generation; ``as_completed()`` up to
the accepted handle for a submission. It prints our CPU per operation (medians).

Its instructions are exact where time is not (``benchmarks/README.md``, eighth pass): under
``valgrind --tool=cachegrind --cache-sim=no``, run it with ``--repeat 1`` and ``--repeat 3``
and divide the difference of the two ``I refs`` by ``2 * N``. The in-process transport never
waits, so a check's ``asyncio.sleep(0)`` (which on a socket lets other answers in first) costs
here a task switch it does not add there; compare trees, not with ``check-cpu``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

import chuizi_async as ca

N = 3000
MODEL = "google/veo-3.1-fast"
_HEADERS = CIMultiDictProxy(
    CIMultiDict(
        {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Length": "319",
            "Date": "Mon, 07 Dec 2026 12:21:42 GMT",
            "Server": "Python/3.11 aiohttp/3.14.5",
        }
    )
)


def _done_answer(gen_id: str) -> bytes:
    """A status answer of a finished generation, as the simulator (and the guide) write it."""
    return json.dumps(
        {
            "id": gen_id,
            "status": "completed",
            "created": 1796646102,
            "model": MODEL,
            "output": {"video_url": f"http://127.0.0.1:45817/videos/{gen_id}.mp4"},
            "usage": {"duration_seconds": 5},
            "x_chuizi": {"generation_id": gen_id, "cost": "0.15000000", "latency_ms": 0},
        }
    ).encode()


class InProcess:
    """A transport that answers at once: a status check from ``answers`` (by the id in the
    query), a submission with the next id."""

    max_connections = 64

    def __init__(self, answers: dict[str, bytes]) -> None:
        self._answers = answers
        self._ids = itertools.count()

    async def send(self, request: ca.Request) -> ca.Response:
        request_id = request.headers.get("X-Request-Id")
        if request.method == "GET":
            content = self._answers[request.url.rsplit("=", 1)[1]]
        else:
            gen_id = f"gen-{next(self._ids):016x}"
            content = b'{"id": "%s", "status": "queued", "model": "%s"}' % (
                gen_id.encode(),
                MODEL.encode(),
            )
        return ca.Response(200, _HEADERS, content, request.url, request_id)

    async def download(self, request: ca.Request, path: Path) -> ca.Response:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


async def checks(ids: list[str], answers: dict[str, bytes]) -> float:
    """µs of CPU per check: every id tracked at once, each done at its first check."""
    policy = ca.PollPolicy(first_poll_after=0.0)
    transport = InProcess(answers)
    async with ca.Client("ck-own-code", poll=policy, transport=transport) as client:
        cpu0 = time.process_time()
        handles = [client.track(gen_id) for gen_id in ids]
        for handle in handles:
            await handle
        return (time.process_time() - cpu0) / client.poller_stats.checks * 1e6


async def submissions(bodies: list[dict[str, Any]]) -> float:
    """µs of CPU per submission through ``as_completed``, until each handle is accepted."""
    policy = ca.PollPolicy(first_poll_after=3600.0)
    transport = InProcess({})
    async with ca.Client("ck-own-code", poll=policy, transport=transport) as client:
        cpu0 = time.process_time()
        async with client.as_completed(bodies):
            while client.stats.submissions < len(bodies):  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            return (time.process_time() - cpu0) / len(bodies) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.own_code", description=__doc__)
    parser.add_argument("--repeat", type=int, default=10, help="runs of each (default 10)")
    parser.add_argument("--only", choices=("check", "submit"), help="one of the two paths")
    args = parser.parse_args(argv)
    ids = [f"gen-{i:016x}" for i in range(N)]
    answers = {gen_id: _done_answer(gen_id) for gen_id in ids}
    bodies = [{"model": MODEL, "prompt": f"clip {i}: a train crossing a bridge"} for i in range(N)]
    paths: dict[str, Callable[[], Coroutine[Any, Any, float]]] = {
        "check": lambda: checks(ids, answers),
        "submit": lambda: submissions(bodies),
    }
    for name, path in paths.items():
        if args.only in (None, name):
            runs = [asyncio.run(path()) for _ in range(args.repeat)]
            print(
                f"{name}: {statistics.median(runs):.2f} µs of our CPU each (median of {len(runs)})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
