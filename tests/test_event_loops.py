"""One client, several event loops: a module-level client used by successive ``asyncio.run``
calls (or pytest-asyncio's loop per test) reopens in each; one open in a loop that still runs
refuses at once. Plain sync tests: each drives its own loops, the simulator runs in a thread."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Awaitable, Iterator
from concurrent.futures import Future
from typing import TypeVar

import pytest

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi

from .conftest import SPEED

T = TypeVar("T")
VEO = "google/veo-3.1-fast"


class ThreadedSimulator:
    """``FakeChuizi`` serving from an event loop of its own, in a thread."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self.sim: FakeChuizi | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with FakeChuizi(speed=SPEED, seed=7) as sim:
            self.sim, self.loop = sim, asyncio.get_running_loop()
            self._ready.set()
            await self._stop.wait()

    def start(self) -> FakeChuizi:
        self._thread.start()
        assert self._ready.wait(10)
        assert self.sim is not None
        return self.sim

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` in the simulator's loop (a client opened there stays there)."""
        assert self.loop is not None

        async def wrapped() -> T:
            return await awaitable

        future: Future[T] = asyncio.run_coroutine_threadsafe(wrapped(), self.loop)
        return future.result(10)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def threaded() -> Iterator[ThreadedSimulator]:
    simulator = ThreadedSimulator()
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def sim(threaded: ThreadedSimulator) -> FakeChuizi:
    assert threaded.sim is not None
    return threaded.sim


def _client(sim: FakeChuizi) -> ca.Client:
    return ca.Client(sim.api_key, base_url=sim.base_url, time_scale=SPEED)


def test_a_client_reopens_in_each_new_event_loop(sim: FakeChuizi) -> None:
    client = _client(sim)  # module-level, as in the README's service example

    async def generate(prompt: str) -> ca.Video:
        return await client.generate(VEO, prompt)

    first = asyncio.run(generate("a cat"))
    assert "its event loop ended; the next use opens it again" in repr(client)
    second = asyncio.run(generate("a dog"))
    with asyncio.Runner() as runner:  # pytest-asyncio's loop per test
        third = runner.run(generate("a fox"))
    asyncio.run(client.aclose())
    gc.collect()  # an unclosed aiohttp session would warn here (warnings are errors)
    assert repr(client).endswith("closed>")
    assert [sim.generations[v.id].prompt for v in (first, second, third)] == [
        "a cat",
        "a dog",
        "a fox",
    ]
    assert client.stats.submissions == 3  # one client throughout: its counts go on


def test_a_paced_client_runs_a_batch_in_each_loop(sim: FakeChuizi) -> None:
    # requests wait in the budget: its event of the first loop must not serve the second
    client = ca.Client(
        sim.api_key,
        base_url=sim.base_url,
        limits=ca.Limits(max_requests_per_second=200),
        time_scale=SPEED,
    )

    async def batch() -> list[ca.Video]:
        return await client.generate_many([{"model": VEO, "prompt": f"p{i}"} for i in range(8)])

    sizes = [len(asyncio.run(batch())) for _ in range(3)]
    asyncio.run(client.aclose())
    assert sizes == [8, 8, 8]
    assert sim.counters.generations_created == 24


def test_generations_pending_when_the_loop_ends_resolve_with_their_ids(
    sim: FakeChuizi, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(sim)
    sim.auto_complete = False

    async def submit() -> ca.Generation:
        return await client.submit(VEO, "a slow one")

    handle = asyncio.run(submit())
    gen_id = handle.id
    assert gen_id is not None
    assert gen_id in caplog.text  # logged as the loop ended: track() it later
    assert client.pending == []

    async def resume() -> ca.Video:
        with pytest.raises(ca.ClientClosed, match="event loop ended") as info:
            await handle
        assert info.value.generation_id == gen_id
        again = client.track(gen_id, model=VEO)
        sim.complete(gen_id)
        return await again

    try:
        video = asyncio.run(resume())
    finally:
        asyncio.run(client.aclose())
    assert video.id == handle.id
    assert len(sim.generations) == 1  # nothing submitted twice


def test_a_submission_on_the_wire_when_the_loop_ends_is_tracked_then_reported(
    sim: FakeChuizi, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(sim)
    sim.auto_complete = False

    async def leave_during_the_post() -> None:
        task = asyncio.create_task(client.submit(VEO, "sent as the loop ends"))
        while not sim.counters.requests:  # noqa: ASYNC110 - the other thread's state
            await asyncio.sleep(0.001)
        task.cancel()  # its caller leaves with the POST on the wire
        # which goes on, and its answer is tracked; then asyncio.run returns (returning while
        # the answer was still on its way raced the loop's end: that loss is the next test's)
        while not client.pending:  # noqa: ASYNC110 - the other thread's answer
            await asyncio.sleep(0.001)

    caplog.set_level(logging.INFO, logger="chuizi_async")
    asyncio.run(leave_during_the_post())
    asyncio.run(client.aclose())
    (created,) = sim.generations
    assert created in caplog.text  # accepted as the loop ended: its id is logged


def test_a_submission_whose_answer_the_loops_end_cuts_off_is_reported_by_its_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # asyncio.run cancels every task natively as it returns; anyio's shield does not hold
    # against that, so an answer still on its way is lost: it must not be lost silently
    keys: list[str] = []

    async def created_then_slow(request: ca.Request) -> ca.Response:
        keys.append(request.headers["Idempotency-Key"])  # created (and billed) here
        await asyncio.sleep(0.5)
        return ca.json_response({"id": "gen-0123456789abcdef", "status": "queued"})

    client = ca.Client("ck-test", transport=ca.MockTransport(created_then_slow))

    async def leave_during_the_post() -> None:
        task = asyncio.create_task(client.submit(VEO, "answered after the loop ends"))
        while not keys:  # noqa: ASYNC110 - the handler's state
            await asyncio.sleep(0.001)
        task.cancel()

    caplog.set_level(logging.WARNING, logger="chuizi_async")
    asyncio.run(leave_during_the_post())
    asyncio.run(client.aclose())
    (key,) = keys
    assert f"Idempotency-Key {key}" in caplog.text
    assert "ck-test" not in caplog.text


def test_a_client_open_in_a_running_loop_refuses_another_at_once(
    threaded: ThreadedSimulator, sim: FakeChuizi
) -> None:
    client = _client(sim)
    threaded.run(client.__aenter__())  # open in the simulator thread's loop, still running

    async def elsewhere() -> None:
        with pytest.raises(RuntimeError, match="another event loop, which is still running"):
            await client.generate(VEO, "a cat")
        with pytest.raises(RuntimeError, match="one Client per event loop"):
            client.track("gen-0123456789abcdef")
        with pytest.raises(RuntimeError, match="in the loop that opened it"):
            await client.aclose()

    asyncio.run(elsewhere())
    assert repr(client).endswith("opened>")
    assert sim.counters.requests == 0
    threaded.run(client.aclose())
    assert client.closed


@pytest.mark.parametrize("cancel_at_once", [False, True])
def test_a_loop_that_ends_right_after_track_leaves_nothing_behind(cancel_at_once: bool) -> None:
    client = ca.Client("ck-x", base_url="http://127.0.0.1:9/v1")  # never reached

    async def track_and_leave() -> ca.Generation:
        handle = client.track("gen-0123456789abcdef")
        if cancel_at_once:  # as a framework's shutdown does: every task, before it ran
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        return handle

    handle = asyncio.run(track_and_leave())
    with pytest.raises(ca.ClientClosed, match="event loop ended"):
        handle.result()
    assert "next use opens it again" in repr(client)
    asyncio.run(client.aclose())
    gc.collect()  # a coroutine never awaited, a session never closed: warnings, here errors
