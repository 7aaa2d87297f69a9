"""The client's configuration objects (``Limits``, ``time_scale``) and the deprecated
arguments they replace: each still warns and still has its effect."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import attrs
import pytest

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi, Faults

VEO = "google/veo-3.1-fast"
SPEED = 1000.0


# -- Limits --------------------------------------------------------------------------------


def test_limits_defaults_are_the_documented_ones() -> None:
    client = ca.Client("ck-x")
    assert client.limits == ca.Limits(max_connections=64, max_requests_per_second=None)
    assert client.time_scale == 1.0


def test_limits_is_a_frozen_value_with_a_readable_repr() -> None:
    limits = ca.Limits(max_connections=8, max_requests_per_second=2.5)
    assert repr(limits) == "Limits(max_connections=8, max_requests_per_second=2.5)"
    assert limits == ca.Limits(max_connections=8, max_requests_per_second=2.5)
    assert hash(limits) == hash(ca.Limits(max_connections=8, max_requests_per_second=2.5))
    assert limits != ca.Limits(max_connections=8)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        limits.max_connections = 1  # type: ignore[misc]


def test_limits_takes_keywords_only() -> None:
    with pytest.raises(TypeError):
        ca.Limits(8)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "named", "allowed"),
    [
        ({"max_connections": 0}, "max_connections", ">= 1"),
        ({"max_connections": -3}, "max_connections", ">= 1"),
        ({"max_connections": True}, "max_connections", ">= 1"),
        ({"max_connections": 8.0}, "max_connections", ">= 1"),
        ({"max_requests_per_second": 0}, "max_requests_per_second", "> 0, or None"),
        ({"max_requests_per_second": -2.5}, "max_requests_per_second", "> 0, or None"),
        ({"max_requests_per_second": float("inf")}, "max_requests_per_second", "> 0"),
        ({"max_requests_per_second": "5"}, "max_requests_per_second", "> 0"),
    ],
)
def test_nonsense_limits_are_refused_naming_argument_value_and_range(
    kwargs: dict[str, Any], named: str, allowed: str
) -> None:
    with pytest.raises(ca.InvalidRequest) as info:
        ca.Limits(**kwargs)
    message = str(info.value)
    assert f"Limits({named}=...)" in message
    assert allowed in message
    assert repr(kwargs[named]) in message
    assert isinstance(info.value, ValueError)


async def test_max_requests_per_second_of_limits_paces_the_whole_client() -> None:
    async with FakeChuizi(speed=SPEED) as server:
        limits = ca.Limits(max_requests_per_second=5)
        async with server.client(limits=limits) as client:
            await client.submit(VEO, "first: takes the only slot of this fifth of a second")
            with anyio.move_on_after(0.05):
                await client.submit(VEO, "second: still waiting for the budget")
        assert server.counters.submissions == 1


def test_time_scale_error_says_what_it_is_for() -> None:
    with pytest.raises(ca.InvalidRequest, match=r"FakeChuizi\(speed=N\)"):
        ca.Client("ck-x", time_scale=-1)


async def test_server_client_keeps_the_simulators_clock_beside_a_policy() -> None:
    async with FakeChuizi(speed=SPEED) as server:
        client = server.client(poll=ca.PollPolicy(interval=5.0))
        assert client.time_scale == SPEED
        async with client:
            with anyio.fail_after(5):  # at time_scale 1, the first check would be 10 s away
                video = await client.generate(VEO, "a cat")
        assert video.id in server.generations


# -- deprecated arguments: each warns, naming the replacement, and still works ---------------


async def test_deprecated_poll_policy_time_scale_warns_and_still_compresses_time() -> None:
    with pytest.deprecated_call(match=r"pass Client\(time_scale=\.\.\.\)") as warned:
        policy = ca.PollPolicy(time_scale=SPEED)
    assert warned[0].filename == __file__  # the warning points at the caller's line
    async with FakeChuizi(speed=SPEED) as server:
        client = ca.Client(server.api_key, base_url=server.base_url, poll=policy)
        assert client.time_scale == SPEED
        async with client:
            with anyio.fail_after(5):  # at time_scale 1, the first check would be 10 s away
                video = await client.generate(VEO, "a cat")
        assert video.id in server.generations


async def test_deprecated_poll_policy_time_scale_passes_through_server_client() -> None:
    with pytest.deprecated_call():
        policy = ca.PollPolicy(time_scale=SPEED / 2)
    async with FakeChuizi(speed=SPEED) as server:
        assert server.client(poll=policy).time_scale == SPEED / 2


def test_deprecated_poll_policy_every_time_scale_warns() -> None:
    with pytest.deprecated_call(match=r"PollPolicy\(time_scale=\.\.\.\) is deprecated"):
        policy = ca.PollPolicy.every(5.0, time_scale=10)
    assert ca.Client("ck-x", poll=policy).time_scale == 10


async def test_deprecated_poll_policy_max_requests_per_second_warns_and_still_paces() -> None:
    with pytest.deprecated_call(match=r"Limits\(max_requests_per_second=\.\.\.\)"):
        policy = ca.PollPolicy(max_requests_per_second=5)
    async with FakeChuizi(speed=SPEED) as server:
        client = server.client(poll=policy)
        assert client.limits == ca.Limits(max_requests_per_second=5)
        async with client:
            await client.submit(VEO, "first: takes the only slot of this fifth of a second")
            with anyio.move_on_after(0.05):
                await client.submit(VEO, "second: still waiting for the budget")
        assert server.counters.submissions == 1


async def test_deprecated_client_max_connections_warns_and_still_bounds_the_pool() -> None:
    async with FakeChuizi(speed=SPEED, auto_complete=False) as server:
        with pytest.deprecated_call(match=r"Limits\(max_connections=\.\.\.\)"):
            client = server.client(max_connections=1)
        with pytest.deprecated_call() as warned:
            ca.Client("ck-x", max_connections=1)
        assert warned[0].filename == __file__  # the warning points at the caller's line
        assert client.limits == ca.Limits(max_connections=1)
        server.faults = Faults(slow=1.0, slow_seconds=0.1)
        async with client, anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(client.submit, VEO, f"clip {i}")
        posts = [r.time for r in server.requests_log if r.method == "POST"]
    assert len(posts) == 3
    # one connection: each submission arrives only once the one before it is answered
    assert all(later - earlier >= 0.09 for earlier, later in itertools.pairwise(posts))


def test_deprecated_client_max_connections_is_still_checked() -> None:
    with (
        pytest.deprecated_call(),
        pytest.raises(ca.InvalidRequest, match=r"Client\(max_connections=\.\.\.\).*>= 1"),
    ):
        ca.Client("ck-x", max_connections=0)


@pytest.mark.parametrize(
    ("make", "advice"),
    [
        (
            lambda: ca.Client("ck-x", max_connections=2, limits=ca.Limits()),
            r"Client\(limits=Limits\(max_connections=\.\.\.\)\) alone",
        ),
        (
            lambda: ca.Client(
                "ck-x",
                poll=ca.PollPolicy(max_requests_per_second=2),
                limits=ca.Limits(max_requests_per_second=3),
            ),
            r"Client\(limits=Limits\(max_requests_per_second=\.\.\.\)\) alone",
        ),
        (
            lambda: ca.Client("ck-x", poll=ca.PollPolicy(time_scale=10), time_scale=100),
            r"pass Client\(time_scale=\.\.\.\) alone",
        ),
    ],
    ids=["max_connections", "max_requests_per_second", "time_scale"],
)
def test_a_setting_given_both_ways_is_refused_saying_which_to_keep(make: Any, advice: str) -> None:
    with pytest.deprecated_call(), pytest.raises(ca.InvalidRequest, match=advice):
        make()


def test_a_deprecated_rate_fills_the_limits_given_without_one() -> None:
    with pytest.deprecated_call():
        policy = ca.PollPolicy(max_requests_per_second=2)
    client = ca.Client("ck-x", poll=policy, limits=ca.Limits(max_connections=4))
    assert client.limits == ca.Limits(max_connections=4, max_requests_per_second=2)
