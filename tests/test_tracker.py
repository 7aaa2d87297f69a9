"""The registry of handles: one live handle per id, gone once resolved, costs when asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest_asyncio

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi

from .conftest import SPEED, ClientFactory, wait_until

VEO = "google/veo-3.1-fast"


@pytest_asyncio.fixture
async def costless() -> AsyncIterator[FakeChuizi]:
    """No cost in the status answers, generations finished only when a test says so."""
    async with FakeChuizi(
        speed=SPEED, dialect="reference", cost_in_status=False, auto_complete=False
    ) as sim:
        yield sim


async def test_an_id_tracked_again_after_cancel_gets_a_fresh_handle_that_resolves(
    make_client: ClientFactory, costless: FakeChuizi
) -> None:
    async with make_client(sim=costless) as client:
        handle = await client.submit(VEO, "a cat")
        assert handle.id is not None
        handle.cancel()
        again = client.track(handle.id, model=VEO)
        assert again is not handle
        assert client.pending == [again]
        costless.complete(handle.id)
        assert (await again).id == handle.id
        assert client.pending == []
    assert handle.cancelled()


async def test_a_resumed_batch_fills_in_the_cost_of_what_it_tracks_by_id(
    make_client: ClientFactory, costless: FakeChuizi, tmp_path: Path
) -> None:
    requests = [{"model": VEO, "prompt": f"clip {i}", "duration": 5} for i in range(3)]
    journal = ca.Journal(tmp_path / "j")
    async with (
        make_client(sim=costless) as first,
        first.as_completed(requests, journal=journal) as results,
    ):
        await wait_until(lambda: len(results.accepted) == 3)
    for gen_id in list(costless.generations):
        costless.complete(gen_id)
    async with make_client(sim=costless) as second:
        videos = await second.generate_many(requests, journal=journal, fetch_costs=True)
    journal.close()
    assert costless.counters.submissions == 3
    assert [v.cost for v in videos] == [Decimal("0.15")] * 3
