"""The request budget (``_budget``): rate windows, 429 pauses, priorities and AIMD, in real time.

Timings are short and checked with generous tolerances: the outcomes (order, who waited, the
learned rate) are what matters, never an exact instant.
"""

from __future__ import annotations

import contextlib
import itertools
import random

import anyio
import anyio.lowlevel
import pytest

from chuizi_async._budget import (
    Priority,
    RateWindow,
    RequestBudget,
    Ticket,
    parse_rate_window,
)

WALL_NOW = 1_800_000_000.0
SLACK = 0.02  # timers may fire a little early or late
LATE = 1.0  # how late anything may be on a loaded machine


def now() -> float:
    return anyio.current_time()


# -- parse_rate_window -------------------------------------------------------------------------


def test_rate_window_with_a_delta_reset() -> None:
    headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "30"}
    assert parse_rate_window(headers) == RateWindow(limit=60, remaining=12, reset_in=30.0)


def test_rate_window_with_a_seconds_suffix() -> None:
    window = parse_rate_window({"x-ratelimit-remaining": "3", "x-ratelimit-reset": "1.5s"})
    assert window == RateWindow(limit=None, remaining=3, reset_in=1.5)


def test_rate_window_with_an_epoch_reset() -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(WALL_NOW) + 12)}
    window = parse_rate_window(headers, wall_now=WALL_NOW)
    assert window is not None
    assert window.reset_in == pytest.approx(12.0)
    assert window.remaining == 0


def test_rate_window_with_an_epoch_reset_in_the_past_resets_now() -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(WALL_NOW) - 100)}
    window = parse_rate_window(headers, wall_now=WALL_NOW)
    assert window is not None
    assert window.reset_in == 0.0


def test_rate_window_reset_is_capped_at_an_hour() -> None:
    window = parse_rate_window({"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "86400"})
    assert window is not None
    assert window.reset_in == 3600.0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-RateLimit-Limit": "60"},
        {"X-RateLimit-Reset": "30"},
        {"Retry-After": "5"},
    ],
)
def test_rate_window_without_remaining_is_none(headers: dict[str, str]) -> None:
    assert parse_rate_window(headers) is None


@pytest.mark.parametrize("remaining", ["lots", "", "nan", "1,000"])
def test_rate_window_with_garbage_remaining_is_none(remaining: str) -> None:
    assert parse_rate_window({"X-RateLimit-Remaining": remaining}) is None


def test_rate_window_with_garbage_limit_and_reset_keeps_remaining() -> None:
    headers = {
        "X-RateLimit-Limit": "many",
        "X-RateLimit-Remaining": "7",
        "X-RateLimit-Reset": "soon",
    }
    assert parse_rate_window(headers) == RateWindow(limit=None, remaining=7, reset_in=0.0)


@pytest.mark.parametrize("reset", ["nan", "inf", "-5"])
def test_rate_window_with_unusable_reset_resets_now(reset: str) -> None:
    window = parse_rate_window({"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": reset})
    assert window is not None
    assert window.reset_in == 0.0


def test_rate_window_negative_remaining_is_zero() -> None:
    window = parse_rate_window({"X-RateLimit-Remaining": "-3"})
    assert window is not None
    assert window.remaining == 0


def test_rate_window_header_names_are_case_insensitive() -> None:
    headers = {"x-RATELIMIT-remaining": "4", "X-RateLimit-LIMIT": "30", "X-RATELIMIT-RESET": "9"}
    assert parse_rate_window(headers) == RateWindow(limit=30, remaining=4, reset_in=9.0)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Remaining": "inf"},
        {"X-RateLimit-Remaining": "1e400"},
        {"X-RateLimit-Remaining": "5", "X-RateLimit-Limit": "inf"},
    ],
    ids=["remaining-inf", "remaining-1e400", "limit-inf"],
)
def test_rate_window_with_infinite_numbers_is_not_a_crash(headers: dict[str, str]) -> None:
    window = parse_rate_window(headers)
    assert window is None or window.remaining >= 0


# -- RequestBudget -----------------------------------------------------------------------------


async def test_max_rate_spaces_requests_evenly() -> None:
    budget = RequestBudget(max_rate=20.0)
    sent: list[float] = []

    async def one() -> None:
        async with budget.slot() as ticket:
            sent.append(ticket.sent_at)

    start = now()
    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(one)
    sent.sort()
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert len(sent) == 6
    assert all(gap >= 0.05 - SLACK for gap in gaps)
    assert sent[0] - start < LATE  # the first goes at once
    assert 0.25 - SLACK <= sent[-1] - sent[0] < 0.25 + LATE


async def test_without_limits_requests_go_at_once() -> None:
    budget = RequestBudget()
    start = now()
    for _ in range(20):
        async with budget.slot() as ticket:
            budget.observe(ticket, 200, {})
    assert now() - start < 0.5
    assert budget.rate is None
    assert budget.rate_limited == 0


async def test_429_with_retry_after_pauses_every_acquirer() -> None:
    budget = RequestBudget()
    async with budget.slot() as ticket:
        budget.observe(ticket, 429, {"Retry-After": "0.3"})
        refused_at = now()
    assert budget.paused_until == pytest.approx(refused_at + 0.3, abs=SLACK)
    sent: list[float] = []

    async def one(priority: Priority, scope: str | None) -> None:
        async with budget.slot(priority, scope) as t:
            sent.append(t.sent_at)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, Priority.POLL, None)
        tg.start_soon(one, Priority.SUBMIT, "google/veo-3.1")
        tg.start_soon(one, Priority.OTHER, None)
        tg.start_soon(one, Priority.POLL, "bailian/wan2.6-t2v")
    assert len(sent) == 4
    assert all(0.3 - SLACK <= s - refused_at < 0.3 + LATE for s in sent)
    assert budget.rate_limited == 1


async def test_429_without_retry_after_pauses_with_a_jittered_backoff() -> None:
    budget = RequestBudget(rng=random.Random(14))
    async with budget.slot() as ticket:
        budget.observe(ticket, 429, {})
        refused_at = now()
    pause = budget.paused_until - refused_at
    # first backoff: full jitter within [0, 2 s]; seed 14 draws about 0.21 s
    assert 0.0 < pause <= 2.0
    async with budget.slot() as t:
        waited = t.sent_at - refused_at
    assert pause - SLACK <= waited < pause + LATE
    assert budget.rate_limited == 1


async def test_consecutive_429s_without_retry_after_keep_the_client_paused() -> None:
    budget = RequestBudget(rng=random.Random(1))
    pauses = []
    async with budget.slot() as ticket:
        pass
    for _ in range(6):
        before = budget.paused_until
        budget.observe(ticket, 429, {})
        pauses.append(budget.paused_until - now())
        assert budget.paused_until >= before  # a later 429 never shortens the pause
    assert all(0.0 <= p <= 60.0 for p in pauses)
    assert budget.rate_limited == 6


async def test_polls_go_before_waiting_submissions_after_a_pause() -> None:
    budget = RequestBudget()
    async with budget.slot() as ticket:
        budget.observe(ticket, 429, {"Retry-After": "0.2"})
    order: list[str] = []

    async def one(priority: Priority, name: str) -> None:
        async with budget.slot(priority):
            order.append(name)

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(one, Priority.SUBMIT, f"submit-{i}")
        await anyio.sleep(0.02)  # the submissions are waiting first
        for i in range(3):
            tg.start_soon(one, Priority.POLL, f"poll-{i}")
    assert sorted(order[:3]) == ["poll-0", "poll-1", "poll-2"]
    assert sorted(order[3:]) == ["submit-0", "submit-1", "submit-2"]


async def test_polls_go_before_waiting_submissions_under_a_rate_cap() -> None:
    budget = RequestBudget(max_rate=50.0)
    async with budget.slot():
        pass  # the next request is now due in 20 ms
    order: list[Priority] = []

    async def one(priority: Priority) -> None:
        async with budget.slot(priority):
            order.append(priority)

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(one, Priority.SUBMIT)
        await anyio.lowlevel.checkpoint()
        for _ in range(2):
            tg.start_soon(one, Priority.OTHER)
        for _ in range(4):
            tg.start_soon(one, Priority.POLL)
    assert order == sorted(order)  # POLL, then OTHER, then SUBMIT
    assert order.count(Priority.POLL) == 4


async def test_empty_window_waits_for_its_reset() -> None:
    budget = RequestBudget()
    async with budget.slot() as ticket:
        budget.observe(
            ticket,
            200,
            {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.2"},
        )
        seen_at = now()
    async with budget.slot() as t:
        waited = t.sent_at - seen_at
    assert 0.2 - SLACK <= waited < 0.2 + LATE
    assert budget.paused_until == 0.0  # a window, not a 429 pause
    assert budget.rate_limited == 0


async def test_a_window_said_to_reset_now_is_probed_a_moment_later() -> None:
    # "Reset: 0" is rounded: the server's window may still have a fraction of a millisecond
    # to run, and a probe sent at once would meet a 429
    budget = RequestBudget()
    async with budget.slot() as ticket:
        budget.observe(ticket, 200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0"})
        seen_at = now()
    async with budget.slot() as probe:
        assert probe.probe
        assert probe.sent_at - seen_at >= 0.005


async def test_window_with_room_admits_at_once_counting_requests_in_flight() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(budget.slot())
        budget.observe(first, 200, {"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "0.3"})
        seen_at = now()
        # remaining=2 counts the one still in flight: one more fits at once
        second = await stack.enter_async_context(budget.slot())
        assert second.sent_at - seen_at < 0.1
        third = await stack.enter_async_context(budget.slot())
        assert third.sent_at - seen_at >= 0.3 - SLACK


async def test_after_the_reset_one_probe_goes_and_its_answer_opens_the_window() -> None:
    budget = RequestBudget()
    async with budget.slot() as ticket:
        budget.observe(ticket, 200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.1"})
        seen_at = now()
    sent: list[float] = []
    answered: list[float] = []

    async def one() -> None:
        async with budget.slot() as t:
            sent.append(t.sent_at)
            await anyio.sleep(0.1)
            answered.append(now())
            budget.observe(t, 200, {"X-RateLimit-Remaining": "50", "X-RateLimit-Reset": "30"})

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)
    assert len(sent) == 2
    assert sent[0] - seen_at >= 0.1 - SLACK  # the probe waited for the reset
    assert sent[1] >= answered[0]  # the other one waited for the probe's answer


async def test_probe_answered_without_rate_headers_does_not_block_the_client() -> None:
    budget = RequestBudget()
    async with budget.slot() as ticket:
        budget.observe(ticket, 200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.05"})
    async with budget.slot() as probe:
        budget.observe(probe, 502, {})  # e.g. a proxy's HTML error page
    with anyio.fail_after(0.5):
        async with budget.slot() as t:
            assert t.sent_at >= probe.sent_at


async def test_probe_that_fails_without_an_answer_does_not_block_the_client() -> None:
    budget = RequestBudget()
    async with budget.slot() as ticket:
        budget.observe(ticket, 200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.05"})
    with pytest.raises(ConnectionResetError):
        async with budget.slot():
            raise ConnectionResetError("the transport failed")
    with anyio.fail_after(0.5):
        async with budget.slot() as t:
            assert t.sent_at > 0


@pytest.mark.parametrize("window_on_the_429", [True, False])
async def test_scoped_429_with_room_in_the_window_only_slows_that_scope(
    window_on_the_429: bool,
) -> None:
    budget = RequestBudget()
    room = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "40", "X-RateLimit-Reset": "30"}
    async with budget.slot(Priority.POLL, "bailian/wan2.6-t2v") as ticket:
        budget.observe(ticket, 200, room)
    async with budget.slot(Priority.POLL, "google/veo-3.1") as ticket:
        headers = {"Retry-After": "0.3", **(room if window_on_the_429 else {})}
        budget.observe(ticket, 429, headers)
        refused_at = now()
    async with budget.slot(Priority.POLL, "bailian/wan2.6-t2v") as other:
        pass
    async with budget.slot(Priority.SUBMIT) as unscoped:
        pass
    async with budget.slot(Priority.POLL, "google/veo-3.1") as same:
        pass
    assert other.sent_at - refused_at < 0.1
    assert unscoped.sent_at - refused_at < 0.1
    assert 0.3 - SLACK <= same.sent_at - refused_at < 0.3 + LATE
    assert budget.paused_until < refused_at  # the client as a whole was never paused
    assert budget.rate is None  # nor slowed down
    assert budget.rate_limited == 1


async def burst(budget: RequestBudget, stack: contextlib.AsyncExitStack, n: int) -> list[Ticket]:
    """``n`` requests about 10 ms apart, all still in flight (after a first answer)."""
    async with budget.slot() as first:
        budget.observe(first, 200, {})
    tickets = []
    for _ in range(n):
        tickets.append(await stack.enter_async_context(budget.slot()))
        await anyio.sleep(0.01)
    return tickets


async def test_learned_rate_decreases_once_per_burst() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        first_burst = await burst(budget, stack, 10)
        budget.observe(first_burst[0], 429, {"Retry-After": "0"})
        decreased = budget.rate
        assert decreased is not None
        # 70% of the rate it was sent at over the server's window (a second without a
        # Retry-After): 11 requests in the last second
        assert decreased == pytest.approx(0.7 * 11)
        for ticket in first_burst[1:6]:  # more 429s answering the same burst
            budget.observe(ticket, 429, {"Retry-After": "0"})
        assert budget.rate == decreased
        assert budget.rate_limited == 6

        # a request sent after the decrease meets a 429: that is news, decrease again
        late = await stack.enter_async_context(budget.slot())
        budget.observe(late, 429, {"Retry-After": "0"})
        again = budget.rate
        assert again is not None
        assert again == pytest.approx(0.7 * decreased, rel=0.01)
        assert budget.rate_limited == 7


async def test_the_rate_that_met_a_429_is_measured_over_the_servers_window() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        tickets = await burst(budget, stack, 10)  # ~100/s for 0.1 s
        await anyio.sleep(0.3)  # then nothing: 11 requests in the last 0.5 s window
        budget.observe(tickets[0], 429, {"Retry-After": "0.5"})
    assert budget.rate == pytest.approx(0.7 * 11 / 0.5, rel=0.1)


async def test_a_lone_429_after_learning_slows_the_client_without_pausing_it() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        tickets = await burst(budget, stack, 10)
        budget.observe(tickets[0], 429, {"Retry-After": "0.3"})  # the first: a pause
        first_pause = budget.paused_until
        await anyio.sleep(0.35)
        for ticket in tickets[1:]:
            budget.observe(ticket, 200, {})  # the 429 was alone: the rest got through
        late = await stack.enter_async_context(budget.slot())
        rate = budget.rate
        assert rate is not None
        budget.observe(late, 429, {"Retry-After": "0.3"})
        assert budget.paused_until == first_pause  # slowed down, not paused
        assert budget.rate == pytest.approx(0.7 * rate)
        again = await stack.enter_async_context(budget.slot())
        budget.observe(again, 429, {"Retry-After": "0.3"})  # a second in a row: a pause
        assert budget.paused_until > now() + 0.2


async def test_learned_rate_climbs_back_additively_on_success() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        tickets = await burst(budget, stack, 10)
        budget.observe(tickets[0], 429, {"Retry-After": "0"})
        halved = budget.rate
        assert halved is not None
        rate = halved
        for _ in range(2):  # the second waits for the rate: the rate holds requests back
            async with budget.slot():
                pass
        steps = []
        for _ in range(20):
            budget.observe(tickets[-1], 200, {})
            new_rate = budget.rate
            assert new_rate is not None
            steps.append(new_rate - rate)
            rate = new_rate
        # additive: small steps that do not grow with the rate (a multiplicative
        # increase would grow them)
        assert all(0 < step < 0.1 * halved for step in steps)
        assert all(b <= a * (1 + 1e-9) for a, b in itertools.pairwise(steps))
        # and it climbs back to the rate that met the 429, and beyond
        for _ in range(50_000):
            budget.observe(tickets[-1], 200, {})
            if (budget.rate or 0.0) > 2 * halved:
                break
        assert (budget.rate or 0.0) > 2 * halved


async def test_the_rate_does_not_climb_while_the_client_sends_less_than_it_may() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        tickets = await burst(budget, stack, 10)
        budget.observe(tickets[0], 429, {"Retry-After": "0"})
        rate = budget.rate
        for _ in range(1000):  # answers, but nobody waited for the rate
            budget.observe(tickets[-1], 200, {})
    assert budget.rate == rate


async def test_learned_rate_paces_later_requests() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        tickets = await burst(budget, stack, 6)
        budget.observe(tickets[0], 429, {"Retry-After": "0"})
    rate = budget.rate
    assert rate is not None
    sent = []
    for _ in range(4):
        async with budget.slot() as t:
            sent.append(t.sent_at)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(gap >= 1 / rate - SLACK for gap in gaps)


async def test_a_429_with_an_empty_window_pauses_until_its_reset() -> None:
    budget = RequestBudget(rng=random.Random(14))  # a short backoff: about 0.21 s
    async with budget.slot() as ticket:
        budget.observe(ticket, 429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.2"})
        refused_at = now()
    async with budget.slot() as t:
        waited = t.sent_at - refused_at
    assert max(0.2, budget.paused_until - refused_at) - SLACK <= waited < 0.2 + LATE
    assert budget.rate_limited == 1
