"""The one poller: a shared schedule, bounded checks, whole-client pauses, transient faults."""

from __future__ import annotations

import asyncio
import math
import time

import anyio
import pytest

import chuizi_async as ca
from chuizi_async._due import Tracked
from chuizi_async._policy import Schedule
from chuizi_async._poller import Poller
from chuizi_async.testing import FakeChuizi, Faults

from .conftest import ClientFactory, wait_until

pytestmark = pytest.mark.both_realisms  # against the harsh simulator too

VEO = "google/veo-3.1-fast"


def _poller_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "chuizi-async poller"]


async def test_one_poller_task_serves_every_generation(
    client: ca.Client, server: FakeChuizi
) -> None:
    server.auto_complete = False
    handles = [await client.submit(VEO, f"clip {i}") for i in range(50)]
    await anyio.sleep(0.1)
    assert len(_poller_tasks()) == 1
    # besides the poller, at most max_in_flight check tasks: never one task per generation
    assert len(asyncio.all_tasks()) < 50
    for handle in handles:
        assert handle.id is not None
        server.complete(handle.id)
    await asyncio.gather(*(h.wait() for h in handles))


async def test_status_checks_in_flight_never_exceed_max_in_flight(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    server.faults = Faults(slow=0.5, slow_seconds=0.05)
    async with make_client(poll=ca.PollPolicy(max_in_flight=4)) as client:
        results = await client.generate_many([{"model": VEO, "prompt": f"p{i}"} for i in range(40)])
        assert 1 <= client.poller_stats.max_in_flight_seen <= 4
    assert len(results) == 40


async def test_a_slow_answer_does_not_hold_the_other_checks(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    server.auto_complete = False
    async with make_client(timeout=5.0) as client:
        server.faults = Faults(slow=1.0, slow_seconds=1.5)
        stuck = await client.submit(VEO, "stuck behind a slow answer")
        await wait_until(lambda: server.counters.status_checks)  # its first check is held
        server.faults = None
        others = [await client.submit(VEO, f"clip {i}") for i in range(10)]
        for handle in others:
            assert handle.id is not None
            server.complete(handle.id)
        with anyio.fail_after(2):
            await asyncio.gather(*(h.wait() for h in others))
        assert not stuck.done()
        stuck.cancel()


async def test_a_stuck_status_check_is_abandoned_and_sent_again(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    server.auto_complete = False
    # timeout 0.8 s: a status check is given up after 0.1 s, not after the whole timeout
    async with make_client(timeout=0.8) as client:
        handle = await client.submit(VEO, "its first check hangs")
        assert handle.id is not None
        server.faults = Faults(slow=1.0, slow_seconds=2.0)
        await wait_until(lambda: server.counters.status_checks)  # the first check hangs
        server.faults = None
        server.complete(handle.id)
        with anyio.fail_after(0.5):  # well before the client's timeout (0.8 s)
            video = await handle.wait()
    assert video.id == handle.id
    assert server.counters.status_checks_by_id[handle.id] >= 2
    assert client.poller_stats.transient_failures >= 1


async def test_a_burst_of_429s_pauses_all_polling_until_retry_after(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    server.auto_complete = False
    async with make_client(poll=ca.PollPolicy(max_in_flight=2)) as client:
        handles = [await client.submit(VEO, f"clip {i}") for i in range(20)]
        server.faults = Faults(rate_limited=1.0, retry_after=0.5)
        # one 429 delays only the check it refused; six of the last twelve answers are
        # no stray 429s: the whole client pauses
        await wait_until(lambda: server.counters.rate_limited >= 6)
        await anyio.sleep(0.05)
        during = server.counters.requests
        await anyio.sleep(0.3)
        # paused: nothing was sent while Retry-After ran
        assert server.counters.requests == during
        assert server.counters.rate_limited <= 8  # the burst and the checks in flight
        server.faults = None
        for handle in handles:
            assert handle.id is not None
            server.complete(handle.id)
        with anyio.fail_after(5):
            videos = await asyncio.gather(*(h.wait() for h in handles))
    assert {v.id for v in videos} == {h.id for h in handles}


async def test_transient_faults_never_fail_a_generation(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    # the status checks' faults are under test: resent submissions are test_exactly_once's
    server.honour_idempotency = True
    server.faults = Faults(
        rate_limited=0.03,
        server_error=0.03,
        bad_gateway_html=0.03,
        connection_reset=0.03,
        truncated_json=0.03,
        slow=0.02,
        retry_after=0.01,
        slow_seconds=0.3,
    )
    async with make_client(timeout=0.2, max_retries=10) as client:
        requests = [
            {"model": VEO, "prompt": "forbidden" if i % 7 == 0 else f"p{i}"} for i in range(60)
        ]
        results = await client.generate_many(requests, return_exceptions=True)
    assert sum(server.counters.faults.values()) > 0
    for result in results:
        if isinstance(result, ca.Video):
            assert server.generations[result.id].status == "completed"
        else:
            assert isinstance(result, ca.GenerationFailed), repr(result)
            assert result.generation_id is not None
            assert server.generations[result.generation_id].status == "failed"
    assert server.counters.generations_created == 60


async def test_a_401_on_a_status_check_fails_that_handle(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    async with make_client() as good:
        handle = await good.submit(VEO, "a cat")
        assert handle.id is not None
        async with make_client(api_key="ck-" + "9" * 32) as bad:
            with pytest.raises(ca.AuthenticationError):
                await bad.track(handle.id)
        assert (await handle).id == handle.id


async def test_checks_per_generation_stay_near_one_when_the_prior_is_right(
    client: ca.Client, server: FakeChuizi
) -> None:
    results = await client.generate_many([{"model": VEO, "prompt": f"p{i}"} for i in range(30)])
    assert len(results) == 30
    per_generation = server.counters.status_checks / 30
    # the 10 s example checks ~4.5 times per 30-60 s generation; ours waits for the prior
    assert per_generation <= 4.5


async def test_the_poller_survives_the_simulator_restarting(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    async with make_client() as client:
        handles = [await client.submit(VEO, f"clip {i}") for i in range(10)]
        await server.stop_listening()
        await anyio.sleep(0.2)
        await server.start_listening()
        with anyio.fail_after(10):
            videos = await asyncio.gather(*(h.wait() for h in handles))
    assert len(videos) == 10
    assert client.poller_stats.transient_failures > 0


async def test_a_cold_batch_learns_where_completions_begin(make_client: ClientFactory) -> None:
    """Videos of 15-25 s where the catalogue guesses 45 s: scouts find where completions
    begin, the rest are brought forward, and the batch costs fewer checks than the 10 s loop
    would (the detection lag is measured in benchmarks/, not here)."""
    speed = 20.0
    async with (
        FakeChuizi(speed=speed, completion_times={VEO: (15.0, 25.0)}, seed=5) as sim,
        make_client(sim=sim, time_scale=speed) as client,
    ):
        results = await client.generate_many(
            [{"model": VEO, "prompt": f"p{i}"} for i in range(120)]
        )
        ready = [sim.generations[v.id].processing_time for v in results if isinstance(v, ca.Video)]
    assert len(ready) == 120
    loop_checks = sum(math.ceil(t / 10) for t in ready)  # the provider's example, made concurrent
    assert sim.counters.status_checks <= loop_checks
    assert client.poller_stats.resolved == 120


def _checks_of(server: FakeChuizi, gen_id: str | None) -> list[float]:
    """When the simulator received the status checks of ``gen_id`` (either route)."""
    return [
        r.time
        for r in server.requests_log
        if r.method == "GET" and (r.query.get("id") == gen_id or r.path.endswith(f"/{gen_id}"))
    ]


async def test_a_batch_accepted_at_once_is_first_checked_first_poll_after_its_acceptance(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    # The poller plans the arrivals of a loop turn together (after the turn): each first
    # check still comes first_poll_after from its own acceptance, never sooner nor much later.
    server.auto_complete = False
    policy = ca.PollPolicy(first_poll_after=300.0, jitter=0.0)  # 0.3 s at SPEED
    async with make_client(poll=policy) as client:
        handles = await asyncio.gather(*(client.submit(VEO, f"clip {i}") for i in range(20)))
        accepted_by = time.monotonic()
        await wait_until(lambda: all(_checks_of(server, h.id) for h in handles))
        first_checks = [min(_checks_of(server, h.id)) for h in handles]
        for handle in handles:
            handle.cancel()
    first_submitted = min(r.time for r in server.requests_log if r.method == "POST")
    assert min(first_checks) >= first_submitted + 0.3 - 0.01
    assert max(first_checks) <= accepted_by + 0.3 + 0.15


async def test_a_handle_cancelled_in_the_turn_it_was_tracked_is_never_checked(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    async with make_client(poll=ca.PollPolicy(first_poll_after=3600.0)) as submitter:
        gen_id = (await submitter.submit(VEO, "submitted elsewhere")).id
    assert gen_id is not None
    async with make_client(poll=ca.PollPolicy(first_poll_after=0.0)) as client:
        handle = client.track(gen_id, model=VEO)  # planned after this turn, due at once...
        assert handle.cancel()  # ... but cancelled within it
        await anyio.sleep(0.1)
        assert _checks_of(server, gen_id) == []
        assert handle not in client.pending


async def test_generations_due_at_the_same_instant_are_each_checked_once() -> None:
    # Three entries planned for the very same instant share no place in the schedule: each
    # is checked, once, and resolves with its own video.
    checked: list[str] = []

    async def fetch(handle: ca.Generation) -> ca.Video:
        assert handle.id is not None
        checked.append(handle.id)
        return ca.Video(handle.id, f"https://cdn.example/{handle.id}.mp4", VEO, 8.0, None)

    policy = ca.PollPolicy(first_poll_after=0.0, jitter=0.0)
    poller = Poller(fetch=fetch, schedule=Schedule(policy), give_up_after=60.0, max_in_flight=2)
    handles = [ca.Generation(f"gen-{i}", VEO, on_resolved=poller.forget) for i in range(3)]
    submitted_at = time.monotonic()
    for handle in handles:
        assert handle.id is not None
        poller.add(Tracked(handle, submitted_at), handle.id)
    async with anyio.create_task_group() as tg:
        tg.start_soon(poller.run)
        with anyio.fail_after(2):
            videos = [await handle for handle in handles]
        tg.cancel_scope.cancel()
    assert sorted(checked) == ["gen-0", "gen-1", "gen-2"]
    assert [video.url for video in videos] == [f"https://cdn.example/gen-{i}.mp4" for i in range(3)]


def test_generations_due_too_far_away_to_count_still_get_places_of_their_own() -> None:
    # A first check so far away that its due time overflows to infinity (a policy of
    # 1.7e308 s on a clock run at half speed): two such entries still take a place each.
    policy = ca.PollPolicy(first_poll_after=1.7e308, jitter=0.0)
    schedule = Schedule(policy, time_scale=0.5)

    async def fetch(handle: ca.Generation) -> ca.Video:
        raise AssertionError("nothing is due")

    poller = Poller(fetch=fetch, schedule=schedule, give_up_after=60.0, max_in_flight=1)
    handles = [ca.Generation(f"gen-{i}", VEO, on_resolved=poller.forget) for i in range(2)]
    for handle in handles:
        assert handle.id is not None
        poller.add(Tracked(handle, time.monotonic()), handle.id)  # not running: planned now
    assert [entry.handle for entry in poller.entries()] == handles
    assert all(math.isfinite(entry.due) for entry in poller.entries())
