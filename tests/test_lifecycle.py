"""A client's life across event loops and its end (``_lifecycle.Lifecycle``): what a user sees
of a generation the server accepts while the client closes."""

from __future__ import annotations

import anyio

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi, Faults

from .conftest import SPEED, wait_until

VEO = "google/veo-3.1-fast"


async def test_a_submission_accepted_while_the_client_closes_resolves_closed_with_its_id() -> None:
    async with FakeChuizi(speed=SPEED, auto_complete=False) as server:
        server.faults = Faults(slow=1.0, slow_seconds=0.3)  # answered within aclose()'s grace
        client = ca.Client(server.api_key, base_url=server.base_url, time_scale=SPEED, timeout=5)
        handles: list[ca.Generation] = []

        async def submit() -> None:
            handles.append(await client.submit(VEO, "answered while the client closes"))

        async with client, anyio.create_task_group() as tg:
            tg.start_soon(submit)
            await wait_until(lambda: server.counters.requests > 0)
            await client.aclose()
        (handle,) = handles
        assert handle.id in server.generations  # accepted, and its id is what the user keeps
        error = handle.exception()
        assert isinstance(error, ca.ClientClosed) and error.generation_id == handle.id
        assert client.closed and client.pending == []
