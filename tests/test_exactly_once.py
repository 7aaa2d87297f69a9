"""Randomized schedules: every handle resolves exactly once, and nothing is left behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chuizi_async as ca
from chuizi_async._retries import RetrySubmissions
from chuizi_async.testing import FakeChuizi, Faults

from .conftest import SPEED, Loopback, wait_until

VEO = "google/veo-3.1-fast"

Op = tuple[str, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["submit", "submit", "complete", "fail", "cancel", "wait", "abandon", "sleep"]
        ),
        st.integers(min_value=0, max_value=50),
    ),
    min_size=1,
    max_size=25,
)


def _counter(resolutions: Counter[int], index: int) -> Callable[[ca.Generation], None]:
    return lambda _: resolutions.update([index])


async def _scenario(script: list[Op], close_early: bool, faulty: bool) -> None:
    resolutions: Counter[int] = Counter()
    handles: list[ca.Generation] = []
    faults = Faults(server_error=0.1, connection_reset=0.05, retry_after=0.01) if faulty else None
    async with FakeChuizi(speed=SPEED, auto_complete=False, faults=faults, seed=1) as server:
        client = ca.Client(
            server.api_key,
            base_url=server.base_url,
            poll=ca.PollPolicy(first_poll_after=5.0, interval=5.0),
            time_scale=SPEED,
            max_retries=10,
        )
        async with client, anyio.create_task_group() as tg:
            for op, n in script:
                if op == "submit":
                    handle = await client.submit(VEO, "forbidden" if n % 5 == 0 else f"p{n}")
                    handle.add_done_callback(_counter(resolutions, len(handles)))
                    handles.append(handle)
                    continue
                if not handles:
                    continue
                handle = handles[n % len(handles)]
                assert handle.id is not None
                if op == "complete":
                    server.complete(handle.id)
                elif op == "fail":
                    server.fail(handle.id)
                elif op == "cancel":
                    handle.cancel()
                elif op == "wait":
                    with contextlib.suppress(ca.ChuiziError):
                        await handle.wait(timeout=0.001 * n)
                elif op == "abandon":  # a caller that goes away mid-wait
                    with anyio.move_on_after(0.001 * n):
                        with contextlib.suppress(ca.ChuiziError):
                            await handle
                elif op == "sleep":
                    await anyio.sleep(0.001 * n)
            if close_early:
                await client.aclose()
            else:
                for handle in handles:
                    assert handle.id is not None
                    server.complete(handle.id)
                with anyio.fail_after(5):
                    for handle in handles:
                        with contextlib.suppress(ca.ChuiziError):
                            await handle
            tg.cancel_scope.cancel()
        assert all(h.done() for h in handles)
        assert all(resolutions[i] == 1 for i in range(len(handles)))
        if not close_early:
            for handle in handles:
                error = handle.exception()
                assert error is None or isinstance(
                    error, ca.GenerationFailed | ca.GenerationCancelled
                ), repr(error)
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current] == []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(script=ops, close_early=st.booleans(), faulty=st.booleans())
def test_any_schedule_resolves_every_handle_exactly_once(
    script: list[Op], close_early: bool, faulty: bool
) -> None:
    asyncio.run(_scenario(script, close_early, faulty))


@pytest.mark.parametrize("how", ["anyio", "native"])
async def test_a_cancelled_submission_on_the_wire_is_still_tracked(how: str) -> None:
    async with FakeChuizi(speed=SPEED, auto_complete=False) as server:
        server.faults = Faults(slow=1.0, slow_seconds=0.2)
        client = ca.Client(server.api_key, base_url=server.base_url, time_scale=SPEED)
        async with client:
            submit = client.submit(VEO, "the caller gives up while this is on the wire")
            if how == "anyio":
                with anyio.move_on_after(0.05) as scope:
                    await submit
                assert scope.cancelled_caught
            else:  # asyncio.wait_for, or a web framework cancelling its handler task
                task = asyncio.ensure_future(submit)
                await anyio.sleep(0.05)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            server.faults = None
            await wait_until(lambda: client.pending)
            (created,) = server.generations
            assert [h.id for h in client.pending] == [created]
            server.complete(created)
            with anyio.fail_after(2):
                video = await client.pending[0]
            assert video.id == created


async def test_a_submission_cancelled_before_it_is_sent_is_never_sent() -> None:
    async with FakeChuizi(speed=SPEED) as server:
        limits = ca.Limits(max_requests_per_second=5)
        client = ca.Client(
            server.api_key, base_url=server.base_url, limits=limits, time_scale=SPEED
        )
        async with client:
            await client.submit(VEO, "first: takes the only slot of this second")
            with anyio.move_on_after(0.05):
                await client.submit(VEO, "second: still waiting for the budget")
            await anyio.sleep(0.4)
        assert server.counters.submissions == 1


@pytest.mark.parametrize("how", ["anyio", "native"])
async def test_a_batch_cancelled_with_submissions_on_the_wire_tracks_every_accepted_one(
    how: str,
) -> None:
    async with FakeChuizi(speed=SPEED, auto_complete=False) as server:
        server.faults = Faults(slow=1.0, slow_seconds=0.2)
        client = ca.Client(server.api_key, base_url=server.base_url, time_scale=SPEED)
        async with client:
            requests = [{"model": VEO, "prompt": f"clip {i}"} for i in range(6)]
            batch = client.generate_many(requests, return_exceptions=True)
            if how == "anyio":
                with anyio.move_on_after(0.1) as scope:
                    await batch
                assert scope.cancelled_caught
            else:
                task = asyncio.ensure_future(batch)
                await anyio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            server.faults = None
            # every generation the server created is tracked once its answer is read
            await wait_until(lambda: len(client.pending) == len(server.generations) > 0)
            assert sorted(str(h.id) for h in client.pending) == sorted(server.generations)
            assert server.counters.submissions == len(server.generations)


@pytest.mark.parametrize("how", ["anyio", "native"])
async def test_a_cancelled_batch_sends_no_further_submission(how: str) -> None:
    # answered at once, no rate limit: a worker never waits before its next request, so only
    # a look at its cancel scopes between submissions can stop it (nothing else would)
    async with FakeChuizi(speed=SPEED, auto_complete=False) as server:
        client = ca.Client(
            server.api_key,
            base_url=server.base_url,
            time_scale=SPEED,
            limits=ca.Limits(max_connections=4),
        )
        async with client:
            requests = [{"model": VEO, "prompt": f"clip {i}"} for i in range(400)]
            batch = client.generate_many(requests, return_exceptions=True)
            if how == "anyio":
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(lambda: batch)
                        await wait_until(lambda: server.counters.submissions >= 10)
                        at_cancel = server.counters.submissions
                        scope.cancel()
            else:
                task = asyncio.ensure_future(batch)
                await wait_until(lambda: server.counters.submissions >= 10)
                at_cancel = server.counters.submissions
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            await anyio.sleep(0.3)
            # at most the ones on the wire (4 workers) went on; every one created is tracked
            assert server.counters.submissions <= at_cancel + 4
            assert len(client.pending) == len(server.generations) == server.counters.submissions


@pytest.mark.parametrize("how", ["batch", "submit"])
async def test_a_submission_waiting_out_429s_is_dropped_when_its_caller_goes(how: str) -> None:
    # a 429 made nothing: the wait for the next attempt (minutes, for a spent window) is
    # not on the wire, so the caller's cancellation ends it at once and nothing is sent later
    async with FakeChuizi(speed=SPEED, auto_complete=False) as server:
        server.faults = Faults(rate_limited=1.0, retry_after=0.02)
        # the client's clock 10x: 429s are waited out for 30 s, far longer than this test
        client = _client(server, time_scale=10.0)
        async with client:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    if how == "batch":
                        requests = [{"model": VEO, "prompt": f"clip {i}"} for i in range(4)]
                        tg.start_soon(lambda: client.generate_many(requests))
                    else:
                        tg.start_soon(lambda: client.submit(VEO, "a heron at dawn"))
                    await wait_until(lambda: server.counters.rate_limited >= 6)
                    cancelled_at = anyio.current_time()
                    scope.cancel()
            assert anyio.current_time() - cancelled_at < 1.0  # not after the 30 s
            server.faults = Faults()
            await anyio.sleep(0.3)  # time for a submission that went on to go out
            assert server.counters.generations_created == 0
            assert not client.pending


async def test_aclose_gives_up_on_a_submission_still_unanswered_after_its_timeout() -> None:
    async with FakeChuizi(speed=SPEED, auto_complete=False) as server:
        server.faults = Faults(slow=1.0, slow_seconds=5.0)
        client = _client(server, timeout=0.3)
        async with client, anyio.create_task_group() as tg:
            outcome: list[BaseException] = []

            async def submit() -> None:
                try:
                    await client.generate_many([{"model": VEO, "prompt": "never answered"}])
                except ca.ChuiziError as exc:
                    outcome.append(exc)

            tg.start_soon(submit)
            await wait_until(lambda: server.counters.requests > 0)
            started = anyio.current_time()
            await client.aclose()
            assert anyio.current_time() - started < 2.0
        (error,) = outcome
        assert isinstance(error, ca.ClientClosed)
        assert "before the submission was answered" in str(error)


async def test_aclose_during_a_batch_gives_every_request_a_client_closed_outcome() -> None:
    # two workers, their submissions never answered: aclose() gives up on those on the wire
    # after its grace, and the requests not sent yet are not sent (not a RuntimeError group)
    async with FakeChuizi(speed=SPEED, auto_complete=False) as server:
        server.faults = Faults(slow=1.0, slow_seconds=5.0)
        client = _client(server, timeout=0.3, limits=ca.Limits(max_connections=2))
        results: list[list[Any]] = []
        async with client, anyio.create_task_group() as tg:
            requests = [{"model": VEO, "prompt": f"clip {i}"} for i in range(5)]

            async def batch() -> None:
                results.append(await client.generate_many(requests, return_exceptions=True))

            tg.start_soon(batch)
            await wait_until(lambda: server.counters.requests > 0)
            await client.aclose()
        ((on_the_wire, *not_sent),) = results
        assert isinstance(on_the_wire, ca.ClientClosed)
        assert "before the submission was answered" in str(on_the_wire)
        assert len(not_sent) == 4
        assert all(isinstance(r, ca.ClientClosed) for r in not_sent)
        assert all("before this request was sent" in str(r) for r in not_sent)
        assert server.counters.generations_created == 0


# -- retry_submissions: a server that ignores Idempotency-Key never bills twice in "safe" -----


def _client(server: FakeChuizi, **kwargs: Any) -> ca.Client:
    kwargs.setdefault("time_scale", SPEED)
    return ca.Client(server.api_key, base_url=server.base_url, **kwargs)


def _generations_per_key(server: FakeChuizi) -> Counter[str | None]:
    return Counter(g.idempotency_key for g in server.generations.values())


def _posted_keys(server: FakeChuizi) -> list[str | None]:
    return [r.header("Idempotency-Key") for r in server.requests_log if r.method == "POST"]


@pytest.mark.parametrize("value", ["unsafe", "SAFE", "", None, True])
def test_retry_submissions_must_be_idempotent_or_safe(value: Any) -> None:
    with pytest.raises(ca.InvalidRequest, match="retry_submissions must be 'idempotent' or"):
        ca.Client("ck-" + "a" * 32, retry_submissions=value)


async def test_safe_mode_reports_a_lost_answer_uncertain_instead_of_paying_twice() -> None:
    faults = Faults(drop_after_create_at={2})
    async with FakeChuizi(speed=SPEED, honour_idempotency=False, faults=faults) as server:
        async with _client(server, retry_submissions="safe") as client:
            requests = [ca.GenerationRequest(VEO, f"clip {i}") for i in range(3)]
            results = await client.generate_many(requests, concurrency=1, return_exceptions=True)
        first, lost, third = results
        assert isinstance(first, ca.Video) and isinstance(third, ca.Video)
        assert isinstance(lost, ca.SubmissionUncertain)
        assert lost.generation_id is None
        assert lost.request == requests[1]
        assert lost.idempotency_key == _posted_keys(server)[1]
        assert lost.idempotency_key in str(lost)
        assert "may or may not have created" in str(lost)
        assert isinstance(lost.__cause__, ca.APIConnectionError)
        # one POST per request; the lost answer's generation was created, once
        assert server.counters.submissions == 3
        assert server.counters.generations_created == 3
        assert set(_generations_per_key(server).values()) == {1}


async def test_idempotent_mode_resends_a_lost_answer_and_an_ignoring_server_bills_twice() -> None:
    faults = Faults(drop_after_create_at={2})
    async with FakeChuizi(speed=SPEED, honour_idempotency=False, faults=faults) as server:
        async with _client(server) as client:  # the default: "idempotent"
            requests = [ca.GenerationRequest(VEO, f"clip {i}") for i in range(3)]
            results = await client.generate_many(requests, concurrency=1)
        assert all(isinstance(r, ca.Video) for r in results)
        posted = _posted_keys(server)
        assert len(posted) == 4 and posted[1] == posted[2]  # the same key, sent again
        assert server.counters.generations_created == 4
        assert _generations_per_key(server)[posted[1]] == 2


@pytest.mark.parametrize("mode", ["idempotent", "safe"])
async def test_a_hundred_requests_with_5_percent_of_answers_lost(mode: RetrySubmissions) -> None:
    faults = Faults(drop_after_create=0.05)
    async with FakeChuizi(speed=SPEED, seed=3, honour_idempotency=False, faults=faults) as server:
        async with _client(server, retry_submissions=mode, max_retries=8) as client:
            requests = [ca.GenerationRequest(VEO, f"clip {i}") for i in range(100)]
            results = await client.generate_many(requests, return_exceptions=True)
        dropped = server.counters.faults["drop_after_create"]
        assert dropped > 0
        videos = [r for r in results if isinstance(r, ca.Video)]
        uncertain = [r for r in results if isinstance(r, ca.SubmissionUncertain)]
        if mode == "safe":
            assert len(videos) + len(uncertain) == 100
            assert len(uncertain) == dropped
            assert server.counters.generations_created == 100  # every one created once
            assert set(_generations_per_key(server).values()) == {1}
            assert {u.idempotency_key for u in uncertain} <= set(_generations_per_key(server))
        else:
            assert len(videos) == 100
            assert server.counters.generations_created == 100 + dropped  # paid twice


async def test_safe_mode_sends_again_while_the_server_refuses_connections() -> None:
    async with FakeChuizi(speed=SPEED, honour_idempotency=False) as server:
        # slower backoff than the other tests: the listener must come back before it ends
        async with _client(server, retry_submissions="safe", time_scale=10, max_retries=10) as c:
            await server.stop_listening()
            async with anyio.create_task_group() as tg:
                handles: list[ca.Generation] = []

                async def submit() -> None:
                    handles.append(await c.submit(VEO, "sent once the server is back"))

                tg.start_soon(submit)
                await wait_until(lambda: c.stats.retries >= 1)
                await server.start_listening()
        assert [h.id for h in handles] == list(server.generations)
        assert server.counters.submissions == 1
        assert server.counters.generations_created == 1


@pytest.mark.parametrize(
    "faults",
    [
        Faults(rate_limited=0.3, retry_after=0.001),
        Faults(server_error=0.3),
        Faults(bad_gateway_html=0.3),
    ],
    ids=["429", "500", "502-html"],
)
async def test_safe_mode_sends_again_after_a_retryable_answer(faults: Faults) -> None:
    async with FakeChuizi(speed=SPEED, seed=5, honour_idempotency=False, faults=faults) as server:
        async with _client(server, retry_submissions="safe", max_retries=10) as client:
            requests = [ca.GenerationRequest(VEO, f"clip {i}") for i in range(20)]
            handles = [await client.submit_request(r) for r in requests]
        assert sum(server.counters.faults.values()) > 0
        assert server.counters.submissions > 20  # the refused ones went again
        assert server.counters.generations_created == 20
        assert sorted(h.id for h in handles if h.id) == sorted(server.generations)


@pytest.mark.parametrize(
    ("faults", "created"),
    [
        (Faults(truncated_json=1.0), 1),
        (Faults(connection_reset=1.0), 0),  # the client cannot tell these two apart
        (Faults(drop_after_create=1.0), 1),
    ],
    ids=["cut-short", "reset", "dropped"],
)
async def test_safe_mode_never_resends_a_request_that_went_out(
    faults: Faults, created: int
) -> None:
    async with FakeChuizi(speed=SPEED, honour_idempotency=False, faults=faults) as server:
        async with _client(server, retry_submissions="safe") as client:
            with pytest.raises(ca.SubmissionUncertain) as info:
                await client.submit(VEO, "went out")
        assert server.counters.submissions == 1
        assert server.counters.generations_created == created
        assert info.value.idempotency_key == _posted_keys(server)[0]


async def test_safe_mode_a_read_timeout_is_uncertain() -> None:
    faults = Faults(slow=1.0, slow_seconds=0.3)
    async with FakeChuizi(speed=SPEED, honour_idempotency=False, faults=faults) as server:
        async with _client(server, retry_submissions="safe", timeout=0.1) as client:
            with pytest.raises(ca.SubmissionUncertain) as info:
                await client.submit(VEO, "answered too late")
            assert isinstance(info.value.__cause__, ca.APITimeoutError)
            await wait_until(lambda: server.counters.generations_created == 1)
        assert server.counters.submissions == 1


async def test_safe_mode_aclose_reports_a_submission_still_on_the_wire_uncertain() -> None:
    async with FakeChuizi(speed=SPEED, auto_complete=False) as server:
        server.faults = Faults(slow=1.0, slow_seconds=5.0)
        client = _client(server, retry_submissions="safe", timeout=0.3)
        async with client, anyio.create_task_group() as tg:
            outcome: list[BaseException] = []

            async def submit() -> None:
                try:
                    await client.submit(VEO, "never answered")
                except ca.ChuiziError as exc:
                    outcome.append(exc)

            tg.start_soon(submit)
            await wait_until(lambda: server.counters.requests > 0)
            await client.aclose()
        (error,) = outcome
        assert isinstance(error, ca.SubmissionUncertain)  # not ClientClosed: it went out
        assert server.counters.submissions == 1


class _RefusesFirst(Loopback):
    """An API whose first submission answer is ``status``; the next ones accept."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.posts = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.posts += 1
        if self.posts == 1:
            return web.json_response(
                {"error": {"message": "try again", "type": "server_error"}},
                status=self.status,
                headers={"Retry-After": "0"},
            )
        return web.json_response({"id": f"gen-{self.posts:016x}", "status": "processing"})

    def client(self) -> ca.Client:
        return ca.Client(
            "ck-" + "a" * 32,
            base_url=f"{self.base_url}/v1",
            retry_submissions="safe",
            time_scale=SPEED,
        )


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_safe_mode_sends_again_after_an_answer_the_provider_calls_retryable(
    status: int,
) -> None:
    async with _RefusesFirst(status) as api:
        async with api.client() as client:
            handle = await client.submit(VEO, "refused once")
        assert handle.id == "gen-0000000000000002"
        assert api.posts == 2


@pytest.mark.parametrize("status", [501, 520, 524])
async def test_safe_mode_raises_an_undocumented_5xx_instead_of_sending_again(status: int) -> None:
    async with _RefusesFirst(status) as api:
        async with api.client() as client:
            with pytest.raises(ca.ServerError) as info:
                await client.submit(VEO, "refused once")
        assert info.value.status_code == status
        assert api.posts == 1
