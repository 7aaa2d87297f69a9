"""Costs: the billing record where the status has none, max_cost held at the limit, prices."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

import chuizi_async as ca
from chuizi_async._cost import WAIT, CostGuard, Prices, price_estimate
from chuizi_async.testing import FakeChuizi

from .conftest import SPEED, ClientFactory, wait_until

VEO = "google/veo-3.1-fast"  # $0.03 a second on the simulator: $0.15 for 5 s
CLIP = Decimal("0.15")


@pytest_asyncio.fixture
async def costless() -> AsyncIterator[FakeChuizi]:
    """The API reference as it may answer: no cost in the status, billed only once done."""
    async with FakeChuizi(
        speed=SPEED,
        dialect="reference",
        cost_in_status=False,
        billing_after_completion=True,
        seed=5,
    ) as sim:
        yield sim


def _requests(n: int, model: str = VEO) -> list[dict[str, Any]]:
    return [{"model": model, "prompt": f"clip {i}", "duration": 5} for i in range(n)]


def _billing_lookups(sim: FakeChuizi) -> Counter[str]:
    """GETs of the billing record by id (the reference dialect's status route is the other)."""
    return Counter(r.query.get("id", "") for r in sim.requests_log if r.path == "/v1/generation")


def _model_list_reads(sim: FakeChuizi) -> int:
    return sum(1 for r in sim.requests_log if r.path == "/v1/models")


# -- the billing record ------------------------------------------------------------------------


async def test_max_cost_stops_at_the_limit_when_status_answers_carry_no_cost(
    make_client: ClientFactory, costless: FakeChuizi
) -> None:
    async with make_client(sim=costless) as client:
        results = await client.generate_many(
            _requests(30), max_cost=Decimal("0.90"), return_exceptions=True
        )
    videos = [r for r in results if isinstance(r, ca.Video)]
    assert costless.counters.generations_created == 6  # 6 x $0.15 = $0.90
    assert len(videos) == 6 and all(v.cost == CLIP for v in videos)
    assert all(isinstance(r, ca.CostLimitExceeded) for r in results[6:])
    assert _billing_lookups(costless) == Counter({v.id: 1 for v in videos})  # once per clip
    assert _model_list_reads(costless) == 1


async def test_the_listed_price_lets_a_batch_start_in_parallel(
    make_client: ClientFactory, costless: FakeChuizi
) -> None:
    async with make_client(sim=costless) as client:
        await client.generate_many(_requests(6), max_cost=Decimal("0.90"))
    # the six were all accepted before the first video was done, not one at a time
    created = sorted(g.submitted_at for g in costless.generations.values())
    first_done = min(g.ready_at for g in costless.generations.values() if g.ready_at)
    assert len(created) == 6 and created[-1] < first_done


async def test_fetch_costs_fills_in_the_cost_from_the_billing_record(
    make_client: ClientFactory, costless: FakeChuizi
) -> None:
    async with make_client(sim=costless) as client:
        without = await client.generate_many(_requests(3))
        assert all(isinstance(v, ca.Video) and v.cost is None for v in without)
        assert not _billing_lookups(costless)
        handles = []
        async with client.as_completed(_requests(3), fetch_costs=True) as results:
            async for handle in results:
                handles.append(handle)
    assert [h.result().cost for h in handles] == [CLIP] * 3
    assert sum(_billing_lookups(costless).values()) == 3


async def test_a_cost_in_the_status_answer_needs_no_billing_lookup(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    async with make_client() as client:
        videos = await client.generate_many(_requests(5), max_cost=Decimal("10"))
    assert all(isinstance(v, ca.Video) and v.cost == CLIP for v in videos)
    # the guide's route is the status route here: every GET of it was a status check
    assert sum(_billing_lookups(server).values()) == server.counters.status_checks


async def test_a_cost_that_cannot_be_learned_counts_its_estimate_as_spent(
    make_client: ClientFactory,
) -> None:
    async with (
        FakeChuizi(
            speed=SPEED, dialect="reference", cost_in_status=False, guide_route_on_reference="404"
        ) as sim,
        make_client(sim=sim) as client,
    ):
        results = await client.generate_many(
            _requests(20), max_cost=Decimal("0.90"), return_exceptions=True
        )
    videos = [r for r in results if isinstance(r, ca.Video)]
    assert sim.counters.generations_created == 6  # the listed price, counted as spent
    assert all(v.cost is None for v in videos)
    assert all(n == 3 for n in _billing_lookups(sim).values())  # asked, then twice again


async def test_billing_reads_the_record_of_a_finished_generation(
    make_client: ClientFactory, costless: FakeChuizi
) -> None:
    async with make_client(sim=costless) as client:
        video = await client.generate(VEO, "a cat", duration=5)
        assert video.cost is None
        record = await client.billing(video)
        assert (record.id, record.cost, record.model) == (video.id, CLIP, VEO)
        assert (await client.billing(video.id)).cost == CLIP

        costless.auto_complete = False
        handle = await client.submit(VEO, "never done")
        assert handle.id is not None
        with pytest.raises(ca.NotFoundError):
            await client.billing(handle.id)
        assert _billing_lookups(costless)[handle.id] == 3
        with pytest.raises(ca.InvalidRequest):
            await client.billing(" ")


async def test_closing_the_client_during_a_billing_lookup_keeps_the_video(
    make_client: ClientFactory,
) -> None:
    # no billing record at all: the lookup asks again after 1-2 s, then 2-4 s
    slow_retries = ca.PollPolicy(first_poll_after=100.0, interval=1000.0, max_interval=1000.0)
    async with (
        FakeChuizi(
            speed=SPEED, dialect="reference", cost_in_status=False, guide_route_on_reference="404"
        ) as sim,
        make_client(sim=sim, poll=slow_retries) as client,
        client.as_completed(_requests(2), fetch_costs=True) as batch,
    ):
        await wait_until(lambda: len(_billing_lookups(sim)) == 2)
        handles = batch.accepted
        await client.aclose()
    videos = [h.result() for h in handles]
    assert [(v.id, v.cost) for v in videos] == [(h.id, None) for h in handles]


# -- max_cost without the model list -----------------------------------------------------------


def _request(model: str = VEO, duration: int | None = 5) -> ca.GenerationRequest:
    return ca.GenerationRequest(model, "p", duration=duration)


def _video(cost: Decimal | None, gen_id: str = "gen-1") -> ca.Video:
    return ca.Video(id=gen_id, url="https://media.example/v.mp4", model=VEO, cost=cost)


def test_without_prices_one_generation_goes_at_a_time_until_a_cost_is_known() -> None:
    guard = CostGuard(Decimal("1.00"))
    guard.prices = Prices()  # the model list could not be read, or listed no usable price
    assert guard.refusal(_request()) is None
    guard.start(0, _request())
    assert guard.refusal(_request()) is WAIT
    guard.finish(0, _video(CLIP))
    assert guard.refusal(_request()) is None
    for token in range(1, 6):
        guard.start(token, _request())
    assert guard.refusal(_request()) is WAIT  # 0.15 spent + 5 x 0.15 in flight + 0.15 > 1.00


def test_a_video_of_unknown_cost_with_no_estimate_stops_the_batch() -> None:
    guard = CostGuard(Decimal("1.00"))
    guard.prices = Prices()
    guard.start(0, _request())
    guard.finish(0, _video(None))
    refusal = guard.refusal(_request())
    assert isinstance(refusal, ca.CostLimitExceeded) and refusal is not WAIT
    assert "cannot be kept" in str(refusal)


def test_a_listed_price_estimates_a_clip_and_the_longest_clip_without_a_duration() -> None:
    listed = ca.RemoteModel(
        id=VEO, aliases=("veo-3.1-fast",), pricing={"unit": "second", "per_second": "0.03"}
    )
    guard = CostGuard(Decimal("0.30"))
    guard.prices = Prices([listed])
    guard.start(0, _request("veo-3.1-fast", duration=5))  # ~0.15, by its alias
    assert guard.refusal(_request(duration=5)) is None  # 0.15 + 0.15 <= 0.30
    assert guard.refusal(_request(duration=None)) is WAIT  # 8 s at most: 0.24
    guard.finish(0, _video(None))
    assert guard.spent == CLIP and guard.estimated == 1


@pytest.mark.parametrize(
    ("pricing", "seconds", "expected"),
    [
        ({"unit": "second", "per_second": "0.03"}, 5, Decimal("0.15")),
        ({"unit": "seconds", "price": 0.1}, 2, Decimal("0.2")),
        ({"unit": "second", "per_second": "0.03"}, None, None),
        ({"unit": "request", "per_request": "0.40"}, None, Decimal("0.40")),
        ({"unit": "per_request", "price": "0.5"}, 8, Decimal("0.5")),
        ({"unit": "token", "per_million": "3.00"}, 5, None),
        ({"per_second": "0.03"}, 5, None),
        ({"unit": "second", "per_second": "-1"}, 5, None),
        ({"unit": "second", "per_second": "n/a"}, 5, None),
    ],
)
def test_price_estimate_reads_prices_per_second_and_per_request(
    pricing: dict[str, Any], seconds: int | None, expected: Decimal | None
) -> None:
    assert price_estimate(pricing, seconds) == expected
