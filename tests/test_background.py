"""The client's background tasks: one owner, cancelled and awaited by aclose, per event loop."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

import chuizi_async as ca
from chuizi_async._background import BackgroundTasks


class _Events:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def tasks(self) -> BackgroundTasks:
        return BackgroundTasks(
            on_loop_end=lambda: self.seen.append("loop ended"),
            release=self.release,
            on_crash=lambda exc: self.seen.append(f"crashed: {exc!r}"),
        )

    async def release(self) -> None:
        self.seen.append("released")

    async def forever(self) -> None:
        await anyio.sleep_forever()


async def test_a_task_cannot_start_before_the_tasks_are_open() -> None:
    tasks = _Events().tasks()
    with pytest.raises(RuntimeError, match="background tasks are not running"):
        tasks.start_soon(anyio.sleep, 0)


async def test_aclose_cancels_every_task_and_waits_for_its_shielded_part() -> None:
    events = _Events()
    tasks = events.tasks()
    tasks.open(asyncio.get_running_loop(), events.forever, name="first")
    await tasks.wait_ready()

    async def on_the_wire() -> None:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.01)
            events.seen.append("answer read")

    tasks.start_soon(on_the_wire)
    await anyio.lowlevel.checkpoint()
    await tasks.aclose()
    assert events.seen == ["answer read"]  # and neither loop end nor release
    with pytest.raises(RuntimeError, match="not running"):
        tasks.start_soon(anyio.sleep, 0)


def test_the_event_loop_ending_releases_what_was_its_and_the_next_loop_reopens() -> None:
    events = _Events()
    tasks = events.tasks()

    async def use() -> None:
        tasks.open(asyncio.get_running_loop(), events.forever, name="first")
        await tasks.wait_ready()
        assert tasks.loop is asyncio.get_running_loop()

    asyncio.run(use())
    assert events.seen == ["loop ended", "released"]
    assert tasks.loop is None and not tasks.ready
    asyncio.run(use())
    assert events.seen == ["loop ended", "released"] * 2


def test_a_crashing_task_is_reported() -> None:
    events = _Events()
    tasks = events.tasks()

    async def crash() -> None:
        raise ValueError("a bug")

    async def use() -> None:
        tasks.open(asyncio.get_running_loop(), crash, name="first")
        await anyio.sleep(0.01)

    asyncio.run(use())
    assert len(events.seen) == 1 and "a bug" in events.seen[0]


def test_a_client_closing_as_its_event_loop_ends_stays_closed() -> None:
    """The loop ends while aclose() waits for a submission on the wire: closed, not reopenable."""

    async def slow(request: ca.Request) -> ca.Response:
        await anyio.sleep(0.05)
        return ca.json_response({"id": "gen-0123456789abcdef", "status": "processing"})

    client = ca.Client("ck-" + "x" * 32, transport=ca.MockTransport(slow))

    async def close_while_submitting() -> None:
        submitting = asyncio.ensure_future(client.submit("google/veo-3.1-fast", "a cat"))
        await anyio.sleep(0.01)  # on the wire
        closing = asyncio.ensure_future(client.aclose())  # waits for the answer
        await anyio.lowlevel.checkpoint()
        assert not submitting.done() and not closing.done()
        # returning: asyncio.run cancels every task left, the client's among them

    asyncio.run(close_while_submitting())
    assert client.closed
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(client.retrieve("gen-0123456789abcdef"))
