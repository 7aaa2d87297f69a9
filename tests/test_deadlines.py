"""One timer for every request in flight (``_deadlines``): each still times out on its own."""

from __future__ import annotations

import asyncio

import pytest

from chuizi_async._deadlines import Deadlines


async def _timed_out_after(deadlines: Deadlines, seconds: float, work: float) -> float | None:
    """``work`` seconds of waiting inside a deadline of ``seconds``: the seconds until its
    ``TimeoutError``, or None if it ended in time."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with deadlines.start(seconds):
            await asyncio.sleep(work)
    except TimeoutError:
        return loop.time() - started
    return None


async def test_a_request_past_its_deadline_gets_a_timeout_error_at_it() -> None:
    deadlines = Deadlines()
    elapsed = await _timed_out_after(deadlines, 0.05, 5.0)
    assert elapsed is not None and 0.04 <= elapsed < 1.0


async def test_deadlines_of_any_length_fire_each_at_its_own_time() -> None:
    deadlines = Deadlines()
    lengths = (0.3, 0.1, 0.2, 0.05)  # shorter ones later: the one timer moves forward for them
    elapsed = await asyncio.gather(*(_timed_out_after(deadlines, s, 5.0) for s in lengths))
    ended = [e for e in elapsed if e is not None]
    assert len(ended) == 4
    for seconds, end in zip(lengths, ended, strict=True):
        assert seconds - 0.01 <= end < seconds + 0.5
    assert sorted(range(4), key=lambda i: ended[i]) == [3, 1, 2, 0]


async def test_requests_in_time_beside_one_that_is_not_are_left_alone() -> None:
    deadlines = Deadlines()
    results = await asyncio.gather(
        _timed_out_after(deadlines, 0.1, 5.0),
        *(_timed_out_after(deadlines, 0.1, 0.01) for _ in range(20)),
        *(_timed_out_after(deadlines, 1.0, 0.2) for _ in range(5)),
    )
    assert results[0] is not None  # timed out
    assert all(r is None for r in results[1:])  # each of the others ended in time


async def test_a_request_that_ended_in_time_is_not_cancelled_afterwards() -> None:
    deadlines = Deadlines()
    with deadlines.start(0.05):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # past the deadline: nothing happens here
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_the_callers_own_cancellation_stays_a_cancellation() -> None:
    deadlines = Deadlines()

    async def request() -> None:
        with deadlines.start(5.0):
            await asyncio.sleep(5.0)

    task = asyncio.create_task(request())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_at_the_deadline_is_not_swallowed_into_a_timeout() -> None:
    deadlines = Deadlines()
    reached = asyncio.Event()

    async def request() -> None:
        with deadlines.start(0.05):
            try:
                await asyncio.sleep(5.0)
            finally:
                reached.set()
                await asyncio.sleep(0)  # the caller's cancellation lands here, too

    task = asyncio.create_task(request())
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_deadlines_serve_one_event_loop_after_another() -> None:
    deadlines = Deadlines()

    for _ in range(2):
        elapsed = asyncio.run(_timed_out_after(deadlines, 0.05, 5.0))
        assert elapsed is not None and 0.04 <= elapsed < 1.0
