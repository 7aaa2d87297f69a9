"""A client's life across event loops and its end (``_lifecycle.Lifecycle``), as a user sees
it: a generation the server accepts while the client closes, a batch in the next loop."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import anyio

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi, Faults

from .conftest import SPEED, wait_until
from .test_event_loops import ThreadedSimulator

VEO = "google/veo-3.1-fast"
CLIP = Decimal("0.15")  # 5 s of VEO at the simulator's price


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


def test_a_batch_in_the_next_event_loop_still_reads_the_costs_the_status_lacks() -> None:
    simulator = _Costless()
    sim = simulator.start()
    try:
        client = ca.Client(sim.api_key, base_url=sim.base_url, time_scale=SPEED)
        costs = [
            asyncio.run(client.generate_many([_request(prompt)], fetch_costs=True))[0].cost
            for prompt in ("in the first loop", "in the second loop")
        ]
        asyncio.run(client.aclose())
    finally:
        simulator.stop()
    assert costs == [CLIP, CLIP]


class _Costless(ThreadedSimulator):
    """The API reference as it may answer: no cost in the status, billed once done."""

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with FakeChuizi(
            speed=SPEED,
            seed=7,
            dialect="reference",
            cost_in_status=False,
            billing_after_completion=True,
        ) as sim:
            self.sim, self.loop = sim, asyncio.get_running_loop()
            self._ready.set()
            await self._stop.wait()


def _request(prompt: str) -> ca.GenerationRequest:
    return ca.GenerationRequest(VEO, prompt, duration=5)
