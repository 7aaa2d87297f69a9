"""The alternatives our client is measured against, as code a reader can check.

1. :func:`one_loop_per_generation`: the provider's example (``requests.post(...)``, then
   ``while True: requests.get(...); time.sleep(10)``) made concurrent with asyncio and raw
   aiohttp: one loop per generation, a fixed interval, no shared budget. The only addition is
   what a user adds after their first 429: a refused submission is sent again after
   ``Retry-After`` (else after one interval), and a refused status check counts as "not yet".
2. :func:`raw_status_checks`: raw aiohttp doing what one status check through our poller does
   (GET, parse the JSON, resolve a future), at the poller's default concurrency.
3. :func:`raw_submissions`: raw aiohttp POSTs of the same bodies, 64 at a time.
4. :func:`wait_for_one`: the waiting half of the loop of 1. (sleep, GET, until final), run as
   one bare asyncio task per pending generation: what tracking costs done by hand.

Both use one ``aiohttp.ClientSession`` with a pool of 64 connections, the client's default.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import attrs

from ._measure import Recorder

__all__ = [
    "POOL_SIZE",
    "LoopResult",
    "one_loop_per_generation",
    "open_session",
    "raw_status_checks",
    "raw_submissions",
    "run_loops",
    "wait_for_one",
]

POOL_SIZE = 64
"""Connections in the pool, as ``chuizi_async.Limits(max_connections=64)``."""


@attrs.frozen
class LoopResult:
    """What one loop ended with."""

    prompt: str
    id: str
    status: str  # "completed" or "failed"
    video_url: str | None
    detected_at: float  # time.monotonic() when the final answer arrived


async def _call(
    session: aiohttp.ClientSession,
    recorder: Recorder,
    method: str,
    url: str,
    *,
    gen_id: str | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request: status, headers and decoded JSON (None if not JSON); recorded."""
    sent = time.monotonic()
    status = 0
    try:
        with recorder.request():
            async with session.request(method, url, json=body) as resp:
                status = resp.status
                raw = await resp.read()
                headers = dict(resp.headers)
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        return status, headers, decoded
    finally:
        recorder.record(method, gen_id, sent, status)


async def one_loop_per_generation(
    session: aiohttp.ClientSession,
    recorder: Recorder,
    base_url: str,
    request: dict[str, Any],
    interval: float,
) -> LoopResult:
    """POST, then ``while True: GET status; sleep(interval)`` — the provider's example."""
    while True:
        status, headers, answer = await _call(
            session, recorder, "POST", f"{base_url}/videos/generations", body=request
        )
        if status == 200:
            break
        if status != 429:
            raise RuntimeError(f"submission refused: HTTP {status} {answer}")
        await asyncio.sleep(float(headers.get("Retry-After", interval)))
    gen_id: str = answer["id"]
    while True:
        status, _, answer = await _call(
            session, recorder, "GET", f"{base_url}/generation?id={gen_id}", gen_id=gen_id
        )
        if status == 200 and answer["status"] in ("completed", "failed"):
            output = answer.get("output") or {}
            return LoopResult(
                request["prompt"],
                gen_id,
                answer["status"],
                output.get("video_url"),
                time.monotonic(),
            )
        await asyncio.sleep(interval)


def _session(api_key: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=POOL_SIZE),
        headers={"Authorization": f"Bearer {api_key}"},
    )


async def run_loops(
    base_url: str,
    api_key: str,
    requests: Sequence[dict[str, Any]],
    interval: float,
    recorder: Recorder,
    *,
    timeout: float | None = None,
) -> list[LoopResult | None]:
    """One loop per request, all at once; results in input order.

    A loop still running after ``timeout`` seconds is cancelled and its result is None.
    """
    async with _session(api_key) as session:
        tasks = [
            asyncio.ensure_future(
                one_loop_per_generation(session, recorder, base_url, request, interval)
            )
            for request in requests
        ]
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return [None if task.cancelled() else task.result() for task in tasks]


async def raw_submissions(
    base_url: str, api_key: str, requests: Sequence[dict[str, Any]], concurrency: int = POOL_SIZE
) -> list[str]:
    """POST every request (at most ``concurrency`` at once); the ids, in input order."""
    limit = asyncio.Semaphore(concurrency)

    async def submit(session: aiohttp.ClientSession, request: dict[str, Any]) -> str:
        async with limit, session.post(f"{base_url}/videos/generations", json=request) as resp:
            resp.raise_for_status()
            answer = json.loads(await resp.read())
        gen_id: str = answer["id"]
        return gen_id

    async with _session(api_key) as session:
        return await asyncio.gather(*(submit(session, request) for request in requests))


async def raw_status_checks(
    base_url: str, api_key: str, ids: Sequence[str], concurrency: int = 16
) -> list[dict[str, Any]]:
    """One status check per id, as the poller does it: GET, parse, resolve a future."""
    loop = asyncio.get_running_loop()
    futures = {gen_id: loop.create_future() for gen_id in ids}
    limit = asyncio.Semaphore(concurrency)

    async def check(session: aiohttp.ClientSession, gen_id: str) -> None:
        async with limit, session.get(f"{base_url}/generation", params={"id": gen_id}) as resp:
            answer = json.loads(await resp.read())
        futures[gen_id].set_result(answer)

    async with _session(api_key) as session:
        async with asyncio.TaskGroup() as tg:
            for gen_id in ids:
                tg.create_task(check(session, gen_id))
        return [await future for future in futures.values()]


async def wait_for_one(
    session: aiohttp.ClientSession, base_url: str, gen_id: str, interval: float
) -> dict[str, Any]:
    """``while True: sleep(interval); GET status`` until final: one task per generation."""
    while True:
        await asyncio.sleep(interval)
        async with session.get(f"{base_url}/generation", params={"id": gen_id}) as resp:
            answer: dict[str, Any] = json.loads(await resp.read())
        if answer.get("status") in ("completed", "failed"):
            return answer


def open_session(api_key: str) -> aiohttp.ClientSession:
    """The session every baseline uses: a pool of 64 connections, the key as a bearer token."""
    return _session(api_key)
