"""Batches: generate_many (input order), as_completed (completion order), concurrency, 402/403."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

import chuizi_async as ca
from chuizi_async._batch_stops import UNREACHABLE_AFTER, unreachable
from chuizi_async.testing import FakeChuizi, Faults

from .conftest import ClientFactory, wait_until

pytestmark = pytest.mark.both_realisms  # the core runs against the harsh simulator too

VEO = "google/veo-3.1-fast"
MIXED = ("google/veo-3.1-fast", "bedrock/nova-reel-1.1", "bailian/wan2.6-t2v", "google/veo-3.1")


def _requests(n: int, *, fail_every: int = 0, model: str = VEO) -> list[dict[str, Any]]:
    return [
        {"model": model, "prompt": "forbidden" if fail_every and i % fail_every == 0 else f"p{i}"}
        for i in range(n)
    ]


async def test_generate_many_keeps_input_order(client: ca.Client, server: FakeChuizi) -> None:
    requests = _requests(25)
    videos = await client.generate_many(requests)
    prompts = [server.generations[v.id].prompt for v in videos if isinstance(v, ca.Video)]
    assert prompts == [r["prompt"] for r in requests]


async def test_generate_many_accepts_request_objects_and_mappings(client: ca.Client) -> None:
    results = await client.generate_many(
        [ca.GenerationRequest(VEO, "an object", duration=4), {"model": VEO, "prompt": "a map"}]
    )
    assert [type(r) for r in results] == [ca.Video, ca.Video]


async def test_a_handle_shows_the_request_its_mapping_was_when_taken(
    client: ca.Client, server: FakeChuizi
) -> None:
    server.auto_complete = False
    given: dict[str, Any] = {
        "model": VEO,
        "prompt": "a kite",
        "duration": 4,
        "aspect_ratio": "9:16",
        "key": "kite",
        "extra_body": {"seed": 7},
    }
    refused = {"model": VEO, "prompt": "a kite", "duration": 99}
    async with client.as_completed([given, refused]) as results:
        handle = await anext(results)  # the refused one: the other is not done
        given["prompt"] = refused["prompt"] = "changed afterwards"
        (sent,) = client.pending
    assert isinstance(handle.exception(), ca.InvalidRequest)
    assert handle.request is not None and handle.request.duration == 99
    assert isinstance(sent.request, ca.GenerationRequest) and sent.request is sent.request
    assert attrs.asdict(sent.request, recurse=False) == {
        **dict.fromkeys(attrs.fields_dict(ca.GenerationRequest)),
        **given,
        "prompt": "a kite",
    }
    assert (sent.key, sent.model, sent.index) == ("kite", VEO, 0)
    assert server.generations[str(sent.id)].prompt == "a kite"


async def test_return_exceptions_puts_each_failure_in_its_place(client: ca.Client) -> None:
    results = await client.generate_many(
        [*_requests(12, fail_every=4), {"model": VEO, "prompt": "x", "duration": 99}],
        return_exceptions=True,
    )
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["GenerationFailed", "Video", "Video", "Video"] * 3 + ["InvalidRequest"]


async def test_an_invalid_batch_is_refused_before_anything_is_sent(
    client: ca.Client, server: FakeChuizi
) -> None:
    requests = [*_requests(5), {"model": VEO, "prompt": "x", "duration": 99}]
    with pytest.raises(ca.InvalidRequest, match="request 5"):
        await client.generate_many(requests)
    with pytest.raises(ca.InvalidRequest, match="'promt'"):
        await client.generate_many([{"model": VEO, "promt": "typo"}])
    assert server.counters.requests == 0


@pytest.mark.parametrize("concurrency", [0, -1, 2.5, True, "4"])
async def test_nonsense_concurrency_is_refused_before_anything_is_sent(
    client: ca.Client, server: FakeChuizi, concurrency: Any
) -> None:
    with pytest.raises(ca.InvalidRequest, match=f"concurrency .*not {concurrency!r}"):
        await client.generate_many(_requests(3), concurrency=concurrency)
    with pytest.raises(ca.InvalidRequest, match="concurrency"):
        client.as_completed(_requests(3), concurrency=concurrency)
    assert server.counters.requests == 0


async def test_a_client_of_one_connection_finishes_its_batches(
    make_client: ClientFactory,
) -> None:
    async with make_client(limits=ca.Limits(max_connections=1)) as client:
        videos = await client.generate_many(_requests(6))
        assert len(videos) == 6
        async with client.as_completed(_requests(4)) as finished:
            assert len([handle async for handle in finished]) == 4


class _PoolOf:
    """A transport that says its pool size (and does not enforce it): counts POSTs at once."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self._inner = ca.AiohttpTransport(max_connections=64)
        self.posting = self.most_posting = 0

    async def send(self, request: ca.Request) -> ca.Response:
        post = request.method == "POST"
        self.posting += post
        self.most_posting = max(self.most_posting, self.posting)
        try:
            return await self._inner.send(request)
        finally:
            self.posting -= post

    async def download(self, request: ca.Request, path: Path) -> ca.Response:
        return await self._inner.download(request, path)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_batch_sends_as_many_submissions_at_once_as_its_transport_has_connections(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    transport = _PoolOf(max_connections=3)
    server.faults = Faults(slow=1.0, slow_seconds=0.05)  # answers overlap
    async with make_client(transport=transport) as client:  # max_connections: 64
        results = await client.generate_many(_requests(12), return_exceptions=True)
    assert all(isinstance(r, ca.Video) for r in results)
    assert transport.most_posting == 3


async def test_a_batch_on_a_transport_without_a_pool_sends_as_many_as_the_client_allows() -> None:
    posting = most_posting = 0
    count = iter(range(100))

    async def handler(request: ca.Request) -> ca.Response:
        nonlocal posting, most_posting
        posting += 1
        most_posting = max(most_posting, posting)
        await anyio.sleep(0.01)
        posting -= 1
        return ca.json_response({"id": f"gen-{next(count):016x}", "status": "processing"})

    transport = ca.MockTransport(handler)
    policy = ca.PollPolicy(first_poll_after=3600.0)
    async with (
        ca.Client(
            "ck-" + "a" * 32, transport=transport, limits=ca.Limits(max_connections=4), poll=policy
        ) as c,
        c.as_completed(_requests(12)) as results,
    ):
        await wait_until(lambda: len(results.accepted) == 12)
    assert transport.max_connections is None
    assert most_posting == 4


async def test_the_first_error_stops_submissions_and_accepted_ones_stay_tracked(
    client: ca.Client, server: FakeChuizi
) -> None:
    server.auto_complete = False
    requests = _requests(40, fail_every=0)
    requests[0]["prompt"] = "forbidden"

    async def fail_first() -> None:
        await wait_until(lambda: server.generations)
        first = next(iter(server.generations))
        server.fail(first, message="Content policy violation", type="invalid_request_error")

    async with anyio.create_task_group() as tg:
        tg.start_soon(fail_first)
        with pytest.raises(ca.GenerationFailed) as info:
            await client.generate_many(requests, concurrency=5)
    accepted = set(server.generations) - {info.value.generation_id}
    assert server.counters.submissions < 40  # stopped submitting
    assert {h.id for h in client.pending} == accepted  # nothing accepted is lost
    if accepted:
        assert any("still tracked" in note for note in info.value.__notes__)


async def test_concurrency_bounds_generations_in_flight(
    client: ca.Client, server: FakeChuizi
) -> None:
    results = await client.generate_many(_requests(30), concurrency=3)
    assert len(results) == 30
    spans = sorted((g.submitted_at, g.ready_at or math.inf) for g in server.generations.values())
    for start, _ in spans:
        overlapping = sum(1 for s, e in spans if s <= start < e)
        assert overlapping <= 3


async def test_as_completed_yields_in_completion_order(
    client: ca.Client, server: FakeChuizi
) -> None:
    server.auto_complete = False
    order: list[str] = []

    async def finish_in_random_order() -> None:
        await wait_until(lambda: len(server.generations) >= 8)
        ids = list(server.generations)
        random.Random(3).shuffle(ids)
        for gen_id in ids:
            order.append(gen_id)
            server.complete(gen_id)
            await anyio.sleep(0.08)

    seen: list[str | None] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(finish_in_random_order)
        async for handle in client.as_completed(_requests(8)):
            seen.append((await handle).id)
    assert seen == order


async def test_as_completed_submits_while_results_are_consumed(client: ca.Client) -> None:
    first_yield_at_submissions = None
    count = 0
    async with client.as_completed(_requests(30), concurrency=30) as results:
        async for handle in results:
            if first_yield_at_submissions is None:
                first_yield_at_submissions = client.stats.submissions
            assert handle.done()
            count += 1
    assert count == 30
    assert first_yield_at_submissions is not None


async def test_leaving_as_completed_early_stops_submissions(
    client: ca.Client, server: FakeChuizi
) -> None:
    async with client.as_completed(_requests(200), concurrency=2) as results:
        async for _ in results:
            break
    submitted = server.counters.submissions
    await anyio.sleep(0.2)
    assert server.counters.submissions == submitted < 200


async def test_as_completed_yields_the_accepted_handles_when_the_client_closes(
    client: ca.Client, server: FakeChuizi
) -> None:
    server.auto_complete = False
    yielded: list[ca.Generation] = []
    async with anyio.create_task_group() as tg:

        async def consume() -> None:
            async with client.as_completed(_requests(5)) as results:
                async for handle in results:
                    yielded.append(handle)

        tg.start_soon(consume)
        await wait_until(lambda: len(client.pending) == 5)
        with anyio.fail_after(5):
            await client.aclose()
    # each accepted generation comes out once, with its id for track() elsewhere
    assert sorted(str(h.id) for h in yielded) == sorted(server.generations)
    assert all(isinstance(h.exception(), ca.ClientClosed) for h in yielded)


async def test_402_stops_submitting_and_the_rest_raise_without_a_request(
    client: ca.Client, server: FakeChuizi
) -> None:
    server.balance = Decimal("0.75")  # five 5 s clips at 0.15
    results = await client.generate_many(
        [{"model": VEO, "prompt": f"p{i}", "duration": 5} for i in range(12)],
        concurrency=1,
        return_exceptions=True,
    )
    videos = [r for r in results if isinstance(r, ca.Video)]
    refused = [r for r in results if isinstance(r, ca.InsufficientBalanceError)]
    assert len(videos) == 5 and len(refused) == 7
    assert all(r.status_code == 402 for r in refused)
    assert all("Insufficient balance" in r.message for r in refused)
    assert server.counters.payment_required == 1
    assert server.counters.submissions == 6  # five accepted, one refused, none after


async def test_402_in_as_completed_reports_unsent_requests_and_finishes_accepted(
    client: ca.Client, server: FakeChuizi
) -> None:
    server.balance = Decimal("0.30")
    outcomes: list[str] = []
    async with client.as_completed(_requests(6), concurrency=1) as results:
        async for handle in results:
            error = handle.exception()
            outcomes.append("video" if error is None else type(error).__name__)
        assert isinstance(results.stopped_by, ca.InsufficientBalanceError)
    assert sorted(outcomes) == ["InsufficientBalanceError"] * 4 + ["video"] * 2


async def test_a_403_for_a_model_stops_only_that_models_submissions(
    make_client: ClientFactory,
) -> None:
    async with (
        FakeChuizi(speed=1000, allowed_models={VEO}) as sim,
        make_client(sim=sim) as client,
    ):
        results = await client.generate_many(
            [{"model": VEO, "prompt": "ok"}, {"model": "google/veo-3.1", "prompt": "no"}] * 3,
            concurrency=1,
            return_exceptions=True,
        )
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["Video", "PermissionDeniedError"] * 3
    assert sim.counters.submissions == 4  # three of the allowed model, one refused, none after
    refused = [r for r in results if isinstance(r, ca.PermissionDeniedError)]
    assert all(r.status_code == 403 and "not allowed" in r.message for r in refused)


async def test_a_403_for_a_model_in_as_completed_names_the_model(
    make_client: ClientFactory,
) -> None:
    forbidden = "google/veo-3.1"
    async with (
        FakeChuizi(speed=1000, allowed_models={VEO}) as sim,
        make_client(sim=sim) as client,
        client.as_completed(
            [{"model": forbidden, "prompt": f"no {i}"} for i in range(4)] + _requests(4),
            concurrency=1,
        ) as results,
    ):
        outcomes = [type(h.exception()).__name__ async for h in results]
        assert list(results.stopped_models) == [forbidden]
        assert results.stopped_by is None
    assert sorted(outcomes) == ["NoneType"] * 4 + ["PermissionDeniedError"] * 4
    assert sim.counters.submissions == 5


async def test_a_403_daily_limit_stops_the_batch_like_a_402(make_client: ClientFactory) -> None:
    async with (
        FakeChuizi(speed=1000, daily_limit=Decimal("0.75")) as sim,  # five 5 s clips at 0.15
        make_client(sim=sim) as client,
    ):
        results = await client.generate_many(
            [{"model": VEO, "prompt": f"p{i}", "duration": 5} for i in range(12)],
            concurrency=1,
            return_exceptions=True,
        )
        async with client.as_completed(_requests(3), concurrency=1) as later:
            outcomes = [h.exception() async for h in later]
            assert isinstance(later.stopped_by, ca.PermissionDeniedError)
    videos = [r for r in results if isinstance(r, ca.Video)]
    refused = [r for r in results if isinstance(r, ca.PermissionDeniedError)]
    assert len(videos) == 5 and len(refused) == 7
    assert all(r.code == "daily_limit_exceeded" for r in refused)
    assert sim.counters.submissions == 6 + 1  # five accepted, one refused, none after; then one
    assert all(isinstance(e, ca.PermissionDeniedError) for e in outcomes)


async def test_300_mixed_generations_resolve_to_their_own_true_outcome(
    client: ca.Client, server: FakeChuizi
) -> None:
    requests = [
        {"model": MIXED[i % len(MIXED)], "prompt": "forbidden" if i % 13 == 0 else f"clip {i}"}
        for i in range(300)
    ]
    results = await client.generate_many(requests, return_exceptions=True)
    assert server.counters.submissions == 300
    assert server.counters.generations_created == 300
    by_prompt = {g.prompt: g for g in server.generations.values() if g.prompt != "forbidden"}
    for request, result in zip(requests, results, strict=True):
        if request["prompt"] == "forbidden":
            assert isinstance(result, ca.GenerationFailed)
            assert result.generation_id is not None
            assert server.generations[result.generation_id].status == "failed"
        else:
            assert isinstance(result, ca.Video)
            assert result.id == by_prompt[request["prompt"]].id
            assert result.model == request["model"]


# -- a server that cannot be reached -----------------------------------------------------------


def test_unreachable_rule() -> None:
    refused = ca.APIConnectError("could not connect to the server")
    silent = ca.APITimeoutError("the server did not answer in time")
    answer = ca.ServerError(503, "busy")
    # nothing answered yet: any failure with no answer stops the batch
    assert unreachable(refused, answered=False, failures_in_a_row=1)
    assert unreachable(
        ca.APIConnectTimeout("timed out connecting"), answered=False, failures_in_a_row=1
    )
    assert unreachable(silent, answered=False, failures_in_a_row=1)
    reset = ca.APIConnectionError("the server closed the connection without an answer")
    assert not unreachable(reset, answered=False, failures_in_a_row=0)  # something answered
    assert not unreachable(ca.ResponseFormatError("<html>"), answered=False, failures_in_a_row=0)
    assert not unreachable(answer, answered=False, failures_in_a_row=0)
    assert not unreachable(ca.InvalidRequest("no such file"), answered=False, failures_in_a_row=0)
    # once the server answered: only UNREACHABLE_AFTER connections in a row that failed
    assert not unreachable(refused, answered=True, failures_in_a_row=UNREACHABLE_AFTER - 1)
    assert unreachable(refused, answered=True, failures_in_a_row=UNREACHABLE_AFTER)
    assert not unreachable(silent, answered=True, failures_in_a_row=UNREACHABLE_AFTER)


async def test_a_batch_to_a_closed_port_stops_after_one_request_and_holds_back_the_rest(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    await server.stop_listening()
    requests = [{"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(30)]
    async with make_client(max_retries=2) as client:
        with anyio.fail_after(10):
            results = await client.generate_many(requests, return_exceptions=True)
        assert client.stats.requests == 3  # one submission and its two retries, no more
    first, *rest = results
    assert isinstance(first, ca.APIConnectError)
    assert all(isinstance(r, ca.NotSubmitted) and r.reason == "unreachable" for r in rest)
    assert all("could not be reached" in str(r) for r in rest)


async def test_as_completed_reports_what_stopped_it_when_the_server_cannot_be_reached(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    await server.stop_listening()
    requests = [{"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(5)]
    async with make_client(max_retries=0) as client:
        batch = client.as_completed(requests)
        async with batch:
            handles = [h async for h in batch]
    assert isinstance(batch.stopped_by, ca.APIConnectError)
    assert (
        sorted(type(h.exception()).__name__ for h in handles)
        == ["APIConnectError"] + ["NotSubmitted"] * 4
    )


async def test_submissions_go_one_at_a_time_only_until_the_server_answers(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    from chuizi_async.testing import Faults

    server.faults = Faults(drop_after_create_at={1})  # the first answer is lost: sent again
    requests = [{"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(6)]
    async with make_client() as client:
        videos = await client.generate_many(requests)
    assert len(videos) == 6
    posts = [r.json["prompt"] for r in server.requests_log if r.method == "POST"]
    # nothing else went out until the first submission was answered (on its second try)
    assert posts[:3] == ["clip 0", "clip 0", "clip 1"]
    assert sorted(posts[2:]) == [f"clip {n}" for n in range(1, 6)]


async def test_a_server_that_answers_an_error_is_reachable_and_the_batch_goes_on(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    requests = [
        {"model": "acme/no-such-model", "prompt": "unknown"},
        *({"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(3)),
    ]
    async with make_client() as client:
        results = await client.generate_many(requests, return_exceptions=True)
    assert isinstance(results[0], ca.NotFoundError)
    assert all(isinstance(r, ca.Video) for r in results[1:])


async def test_a_lost_answer_to_the_first_submission_does_not_stop_the_batch(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    from chuizi_async.testing import Faults

    server.faults = Faults(drop_after_create_at={1})  # created, then the connection is cut
    requests = [{"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(4)]
    async with make_client(retry_submissions="safe") as client:
        results = await client.generate_many(requests, return_exceptions=True)
    assert isinstance(results[0], ca.SubmissionUncertain)  # the server was reached
    assert all(isinstance(r, ca.Video) for r in results[1:])


class _Outage:
    """A transport in front of the simulator whose submissions of the given numbers (from 1)
    make no connection, as during a network outage: nothing reaches the server."""

    def __init__(self, down: set[int]) -> None:
        self._inner = ca.AiohttpTransport()
        self._down = down
        self.posts = 0

    async def send(self, request: ca.Request) -> ca.Response:
        if request.method == "POST":
            self.posts += 1
            if self.posts in self._down:
                raise ca.APIConnectError(
                    f"could not connect to the server (outage) [{request.url}]"
                )
        return await self._inner.send(request)

    async def download(self, request: ca.Request, path: Any) -> ca.Response:
        return await self._inner.download(request, path)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize(
    ("down", "statuses"),
    [
        # three in a row after an answer: the batch stops, the rest is held back
        (
            {2, 3, 4},
            ["Video", "APIConnectError", "APIConnectError", "APIConnectError"]
            + ["NotSubmitted"] * 4,
        ),
        # an answer in between starts the count again: nothing held back
        (
            {2, 3, 5, 6},
            [
                "Video",
                "APIConnectError",
                "APIConnectError",
                "Video",
                "APIConnectError",
                "APIConnectError",
                "Video",
                "Video",
            ],
        ),
    ],
    ids=["stops", "goes-on"],
)
async def test_a_server_that_goes_away_mid_batch_stops_it_after_failed_connections_in_a_row(
    make_client: ClientFactory, down: set[int], statuses: list[str]
) -> None:
    requests = [{"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(8)]
    async with make_client(transport=_Outage(down), max_retries=0) as client:
        results = await client.generate_many(requests, concurrency=1, return_exceptions=True)
    assert [type(r).__name__ for r in results] == statuses
