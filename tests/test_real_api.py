"""The API as it really is: both status routes, rate windows from headers, the catalogue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anyio
import pytest
import pytest_asyncio

import chuizi_async as ca
from chuizi_async._retries import RATE_LIMIT_PATIENCE
from chuizi_async.testing import FakeChuizi, Faults, RateLimit

from .conftest import SPEED, ClientFactory, wait_until

VEO = "google/veo-3.1-fast"


@pytest_asyncio.fixture
async def reference() -> AsyncIterator[FakeChuizi]:
    async with FakeChuizi(speed=SPEED, dialect="reference", seed=3) as sim:
        yield sim


def _route_counts(sim: FakeChuizi) -> tuple[int, int]:
    generation = sum(1 for r in sim.requests_log if r.path.endswith("/generation"))
    videos = sum(
        1 for r in sim.requests_log if r.method == "GET" and r.path.startswith("/v1/videos/")
    )
    return generation, videos


def _requests(n: int, model: str = VEO, prompt: str = "clip") -> list[dict[str, Any]]:
    return [{"model": model, "prompt": f"{prompt} {i}"} for i in range(n)]


# -- status routes -----------------------------------------------------------------------------


async def test_the_reference_dialect_works_unconfigured(
    make_client: ClientFactory, reference: FakeChuizi
) -> None:
    async with make_client(sim=reference) as client:
        videos = await client.generate_many(_requests(20))
    assert all(isinstance(v, ca.Video) and len(v.id) == 28 for v in videos)
    generation, videos_route = _route_counts(reference)
    assert generation == 0  # the submit answer (task_id) pointed at /videos/<id> at once
    assert videos_route >= 20


async def test_a_billing_record_means_wrong_route_and_the_route_is_learned_once(
    make_client: ClientFactory, reference: FakeChuizi
) -> None:
    async with make_client(sim=reference) as submitter:
        handles = [await submitter.submit(VEO, f"clip {i}") for i in range(10)]
        ids = [h.id for h in handles if h.id is not None]
        for handle in handles:
            handle.cancel()
            reference.complete(ids[handles.index(handle)])
    # a fresh client that only knows ids (no submit answer to hint the route)
    async with make_client(sim=reference) as client:
        status = await client.retrieve(ids[0])
        assert status.status == "succeeded" and status.state == "completed"
        for gen_id in ids[1:]:
            assert (await client.retrieve(gen_id)).state == "completed"
    generation, videos = _route_counts(reference)
    assert generation == 1  # one probe answered the billing record, for the client's life
    assert videos >= 10


async def test_a_404_on_the_guide_route_means_wrong_route(make_client: ClientFactory) -> None:
    async with FakeChuizi(speed=SPEED, dialect="reference", guide_route_on_reference="404") as sim:
        async with make_client(sim=sim) as first:
            handle = await first.submit(VEO, "a cat")
            assert handle.id is not None
            handle.cancel()
        async with make_client(sim=sim) as client:
            video = await client.track(handle.id)
        assert video.id == handle.id
        assert _route_counts(sim)[0] == 1


async def test_the_guide_dialect_needs_no_probe(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    async with make_client() as client:
        await client.generate_many(_requests(10))
    assert _route_counts(server)[1] == 0


async def test_a_404_on_both_routes_fails_only_that_handle(
    make_client: ClientFactory, reference: FakeChuizi
) -> None:
    async with make_client(sim=reference) as client:
        ghost = client.track("gen-" + "0" * 24)
        real = await client.submit(VEO, "a cat")
        with pytest.raises(ca.NotFoundError):
            await ghost
        assert (await real).id == real.id


@pytest.mark.parametrize("route", ["generation", "videos"])
async def test_a_pinned_route_is_used_alone(make_client: ClientFactory, route: str) -> None:
    dialect = "guide" if route == "generation" else "reference"
    async with FakeChuizi(speed=SPEED, dialect=dialect) as sim:  # type: ignore[arg-type]
        async with make_client(sim=sim, status_route=route) as client:
            await client.generate_many(_requests(5))
        generation, videos = _route_counts(sim)
    assert (generation == 0) if route == "videos" else (videos == 0)


async def test_a_pinned_route_that_answers_no_status_is_a_clear_error(
    make_client: ClientFactory, reference: FakeChuizi
) -> None:
    async with make_client(sim=reference, status_route="generation") as client:
        with pytest.raises(ca.APIError, match="status_route='auto'"):
            await client.generate(VEO, "a cat")


@pytest.mark.parametrize(
    "knobs", [{"wrap_data": True}, {"top_level_video_url": True}, {"dialect": "reference"}]
)
async def test_every_documented_answer_shape_gives_a_video(
    make_client: ClientFactory, knobs: dict[str, Any]
) -> None:
    async with FakeChuizi(speed=SPEED, **knobs) as sim, make_client(sim=sim) as client:
        video = await client.generate(VEO, "a cat", duration=5)
    assert video.url.endswith(".mp4")
    assert video.cost == Decimal("0.15")


# -- a 404 just after submission ---------------------------------------------------------------

GRACE_SPEED = 100.0  # a 3 s grace is 30 ms: room for checks inside it


def _inside_grace(sim: FakeChuizi, path_prefix: str) -> tuple[int, int]:
    """GETs of status routes starting with ``path_prefix``: (inside the grace, after it)."""
    inside = after = 0
    for r in sim.requests_log:
        if r.method != "GET" or not r.path.startswith(path_prefix):
            continue
        gen_id = r.query.get("id") or r.path.rsplit("/", 1)[-1]
        generation = sim.generations[gen_id]
        if r.time < generation.submitted_at + sim.not_found_grace / sim.speed:
            inside += 1
        else:
            after += 1
    return inside, after


@pytest.mark.parametrize("dialect", ["guide", "reference"])
async def test_a_404_just_after_submission_is_checked_again(
    make_client: ClientFactory, dialect: str
) -> None:
    # a 10 s grace is 100 ms here: the first checks (5 ms after each submission) fall inside
    # it even on a loaded machine (3 s, 30 ms, did not always: no 404 to assert on)
    async with FakeChuizi(
        speed=GRACE_SPEED,
        dialect=dialect,  # type: ignore[arg-type]
        not_found_grace=10.0,
        default_completion_time=(14.0, 18.0),
        seed=11,
    ) as sim:
        poll = ca.PollPolicy(first_poll_after=0.5, interval=1.0)
        async with make_client(sim=sim, poll=poll, time_scale=GRACE_SPEED) as client:
            videos = await client.generate_many(_requests(40))
        assert all(isinstance(v, ca.Video) for v in videos)
        home, other = ("/v1/generation", "/v1/videos/")
        if dialect == "reference":
            home, other = other, home
        inside, _ = _inside_grace(sim, home)
        assert inside > 0  # the 404s did happen
        # the route was not learned wrong: the other one was tried only after a 404 on this one
        assert sum(_inside_grace(sim, other)) <= inside


@pytest.mark.parametrize(("grace", "requests"), [(0.0, 2), (3.0, 4)])
async def test_an_id_that_never_existed_is_not_found_after_the_grace(
    make_client: ClientFactory, server: FakeChuizi, grace: float, requests: int
) -> None:
    ghost = "gen-" + "0" * 16
    poll = ca.PollPolicy(first_poll_after=0.5, not_found_grace=grace)
    async with make_client(poll=poll, time_scale=GRACE_SPEED) as client:
        with pytest.raises(ca.NotFoundError):
            await client.track(ghost)
    # each check asks both routes; within the grace, more than one check
    assert server.counters.status_checks_by_id[ghost] >= requests
    if not grace:
        assert server.counters.status_checks_by_id[ghost] == requests


def test_not_found_grace_must_be_a_non_negative_number() -> None:
    with pytest.raises(ca.InvalidRequest, match="not_found_grace"):
        ca.PollPolicy(not_found_grace=-1.0)


# -- catalogue and account ---------------------------------------------------------------------


def test_models_holds_the_twelve_models_of_the_guide() -> None:
    assert len(ca.MODELS) == 12
    assert ca.MODELS["bailian/happyhorse-1.0-t2v"].max_duration == 15
    assert ca.MODELS["bailian/wan2.6-i2v"].kind == "image-to-video"
    assert ca.MODELS["bailian/happyhorse-1.0-r2v"].needs_reference_images
    assert ca.MODELS["bailian/happyhorse-1.0-video-edit"].needs_video


async def test_reference_images_and_source_video_are_sent_under_the_api_names(
    client: ca.Client, server: FakeChuizi
) -> None:
    await client.submit(
        "bailian/happyhorse-1.0-r2v",
        "a dance",
        reference_images=["https://example.com/a.png", b"\x89PNG"],
        resolution="1080P",
    )
    await client.submit(
        "bailian/happyhorse-1.0-video-edit", "make it snow", video="https://example.com/v.mp4"
    )
    r2v, edit = [r.json for r in server.requests_log if r.method == "POST"]
    assert isinstance(r2v, dict) and isinstance(edit, dict)
    assert r2v["reference_image_urls"][0] == "https://example.com/a.png"
    assert r2v["reference_image_urls"][1].startswith("data:image/png;base64,")
    assert r2v["resolution"] == "1080P"
    assert edit["video_url"] == "https://example.com/v.mp4"


async def test_list_models_returns_the_live_catalogue(client: ca.Client) -> None:
    models = await client.list_models()
    by_id = {m.id: m for m in models}
    assert VEO in by_id
    assert "veo-3.1-fast" in by_id[VEO].aliases
    assert by_id[VEO].pricing


@pytest.mark.parametrize("shape", ["data", "legacy"])
async def test_key_info_parses_both_documented_shapes(
    make_client: ClientFactory, shape: str
) -> None:
    async with (
        FakeChuizi(speed=SPEED, balance=Decimal("42.5"), key_info_shape=shape) as sim,  # type: ignore[arg-type]
        make_client(sim=sim) as client,
    ):
        info = await client.key_info()
    assert info.balance == Decimal("42.5")


# -- rate limits -------------------------------------------------------------------------------


# The provider's window is 60 s; these tests compress it 50 times, clocks included.
LIMITED_SPEED = 50.0


def _limited_client(make_client: ClientFactory, sim: FakeChuizi) -> ca.Client:
    return make_client(sim=sim, time_scale=LIMITED_SPEED)


async def test_rate_window_headers_pace_a_batch_without_429s(make_client: ClientFactory) -> None:
    limit = RateLimit(limit=30, window=60 / LIMITED_SPEED, headers=True, retry_after=True)
    async with (
        FakeChuizi(speed=LIMITED_SPEED, rate_limit=limit) as sim,
        _limited_client(make_client, sim) as client,
    ):
        results = await client.generate_many(_requests(40))
    assert len(results) == 40
    assert sim.counters.generations_created == 40
    assert sim.counters.rate_limited <= 2


async def test_429s_without_headers_teach_the_client_the_rate(make_client: ClientFactory) -> None:
    limit = RateLimit(limit=30, window=60 / LIMITED_SPEED, headers=False, retry_after=False)
    async with (
        FakeChuizi(speed=LIMITED_SPEED, rate_limit=limit) as sim,
        _limited_client(make_client, sim) as client,
    ):
        results = await client.generate_many(_requests(40))
    assert len(results) == 40
    assert sim.counters.generations_created == 40
    # the first burst's excess over the limit (10: nothing said the limit in advance), then
    # a pause until the window has room and a learned rate: hardly any more
    assert sim.counters.rate_limited <= 15


async def test_a_submission_waits_out_more_429s_than_its_retries(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    # a 429 says when, not whether: refused more often than max_retries, then let in
    server.faults = Faults(rate_limited=1.0, retry_after=None)
    async with make_client(max_retries=2) as client, anyio.create_task_group() as tg:
        handles: list[ca.Generation] = []

        async def submit() -> None:
            handles.append(await client.submit(VEO, "a heron at dawn"))

        tg.start_soon(submit)
        await wait_until(lambda: server.counters.rate_limited >= 6)
        server.faults = Faults()
    assert server.counters.rate_limited >= 6  # twice the attempts max_retries=2 allows
    assert [h.id for h in handles] == list(server.generations)  # accepted once


async def test_429s_longer_than_the_patience_raise_rate_limit_error(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    server.faults = Faults(rate_limited=1.0, retry_after=None)
    async with make_client(max_retries=2) as client:
        started = anyio.current_time()
        with pytest.raises(ca.RateLimitError):
            await client.submit(VEO, "a heron at dawn")
        waited = anyio.current_time() - started
    assert waited >= RATE_LIMIT_PATIENCE / SPEED  # five documented windows, not 3 attempts
    assert server.counters.rate_limited > 3
    assert server.counters.generations_created == 0


async def test_processes_sharing_a_key_that_says_nothing_lose_no_clip(
    make_client: ClientFactory,
) -> None:
    # three clients on one key, no rate headers, no Retry-After: none knows the others'
    # use, so 429s are many; each submission waits them out instead of failing
    speed = 200.0
    limit = RateLimit(limit=30, window=60 / speed, headers=False, retry_after=False)
    async with FakeChuizi(speed=speed, rate_limit=limit) as sim:
        results: list[list[ca.Video]] = []

        async def batch(n: int) -> None:
            async with make_client(sim=sim, time_scale=speed) as client:
                results.append(await client.generate_many(_requests(20, prompt=f"client {n}")))

        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(batch, n)
    assert [len(r) for r in results] == [20, 20, 20]
    assert sim.counters.generations_created == 60
    assert sim.counters.rate_limited > 0


async def test_a_per_model_limit_is_learned_and_respected(make_client: ClientFactory) -> None:
    limit = RateLimit(limit=600, window=60 / LIMITED_SPEED, per_model=10, retry_after=True)
    async with (
        FakeChuizi(speed=LIMITED_SPEED, rate_limit=limit) as sim,
        _limited_client(make_client, sim) as client,
    ):
        first = await client.generate_many(_requests(20))
        learned_from = sim.counters.rate_limited
        second = await client.generate_many(_requests(20))
    assert len(first) == len(second) == 20
    assert sim.counters.generations_created == 40
    assert learned_from > 0  # the first window taught the limit ...
    assert sim.counters.rate_limited == learned_from  # ... and it was never met again


async def test_max_requests_per_second_caps_the_whole_client(make_client: ClientFactory) -> None:
    async with FakeChuizi(speed=SPEED) as sim:
        limits = ca.Limits(max_requests_per_second=100)
        async with make_client(sim=sim, limits=limits) as client:
            await client.generate_many(_requests(20))
        times = sorted(r.time for r in sim.requests_log)
    # 100/s: no more than ~11 requests in any 0.1 s
    assert all(sum(1 for t in times if start <= t < start + 0.1) <= 11 for start in times)
