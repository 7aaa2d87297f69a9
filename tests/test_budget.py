"""The request budget (``_budget``): rate windows, 429 pauses, priorities and AIMD, in real time.

Timings are short and checked with generous tolerances: the outcomes (order, who waited, the
learned rate) are what matters, never an exact instant.
"""

from __future__ import annotations

import contextlib
import itertools
import random
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

from chuizi_async._budget import Priority, RequestBudget, Ticket
from chuizi_async._rate_headers import MAX_RESET, RateWindow, parse_rate_window, parse_reset
from chuizi_async.testing import FakeChuizi, Faults, RateLimit
from chuizi_async.testing._ratelimit import RESET_FORMATS, ResetFormat

from .conftest import SPEED, ClientFactory

WALL_NOW = 1_800_000_000.0
SLACK = 0.02  # timers may fire a little early or late
LATE = 1.0  # how late anything may be on a loaded machine


def now() -> float:
    return anyio.current_time()


@contextlib.asynccontextmanager
async def slot(
    budget: RequestBudget, priority: Priority = Priority.OTHER, model_scope: str | None = None
) -> AsyncIterator[Ticket]:
    """A place for one request, held for the block, as the client's send path takes it."""
    ticket = budget.try_acquire(priority, model_scope) or await budget.acquire(
        priority, model_scope
    )
    try:
        yield ticket
    finally:
        budget.release(ticket)


# -- parse_rate_window -------------------------------------------------------------------------


def test_rate_window_with_a_delta_reset() -> None:
    headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "30"}
    assert parse_rate_window(headers) == RateWindow(limit=60, remaining=12, reset_in=30.0)


# Every way a gateway writes X-RateLimit-Reset, read at WALL_NOW (2027-01-15 08:00:00 UTC).
RESETS = [
    ("30", 30.0),  # seconds from now
    ("0", 0.0),
    ("0.25", 0.25),  # seconds from now, decimal
    ("1.5s", 1.5),  # a duration...
    ("250ms", 0.25),
    ("1m30s", 90.0),
    ("6m0s", 360.0),  # ... as OpenAI writes it
    ("1h", 3600.0),
    ("1h0m0.5s", 3600.0),  # capped at MAX_RESET
    ("734ms", 0.734),
    (".5s", 0.5),
    ("1800000012", 12.0),  # epoch seconds
    ("1800000012.25", 12.25),
    ("1800000012250", 12.25),  # epoch milliseconds: not an hour's wait
    ("1800000012250000", 12.25),  # epoch microseconds
    ("Fri, 15 Jan 2027 08:00:12 GMT", 12.0),  # an HTTP date
    ("2027-01-15T08:00:12Z", 12.0),  # an ISO 8601 date
    ("1799999900", 0.0),  # a date in the past: the window has reset
    ("1799999900000", 0.0),
    ("Fri, 15 Jan 2027 07:00:00 GMT", 0.0),
    ("-5", 0.0),
    ("86400", MAX_RESET),  # a day: capped
    (" 30 ", 30.0),
    ("", None),  # unreadable: the budget assumes the documented 60 s window
    ("soon", None),
    ("nan", None),
    ("inf", None),
    ("1e400", None),
    ("ms", None),
    ("30 seconds", None),
    ("1m30", None),
    ("Fri, 99 Foo 2027", None),
]


@pytest.mark.parametrize(("raw", "seconds"), RESETS, ids=[raw or "empty" for raw, _ in RESETS])
def test_reset_is_read_in_every_format_a_gateway_uses(raw: str, seconds: float | None) -> None:
    reset = parse_reset(raw, wall_now=WALL_NOW)
    if seconds is None:
        assert reset is None
    else:
        assert reset == pytest.approx(seconds, abs=1e-6)


def test_rate_window_with_an_epoch_reset() -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(WALL_NOW) + 12)}
    window = parse_rate_window(headers, wall_now=WALL_NOW)
    assert window == RateWindow(limit=None, remaining=0, reset_in=12.0)


def test_rate_window_without_a_reset_has_none() -> None:
    headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "12"}
    assert parse_rate_window(headers) == RateWindow(limit=60, remaining=12, reset_in=None)


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
    assert parse_rate_window(headers) == RateWindow(limit=None, remaining=7, reset_in=None)


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
        async with slot(budget) as ticket:
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
        async with slot(budget) as ticket:
            budget.observe(ticket, 200, {})
    assert now() - start < 0.5
    assert budget.rate is None
    assert budget.rate_limited == 0


def refuse_in_a_burst(budget: RequestBudget, ticket: Ticket, headers: dict[str, str]) -> None:
    """Four 429s in a row: far more than stray 429s (5% of answers) would give."""
    for _ in range(4):
        budget.observe(ticket, 429, headers)


async def test_a_lone_429_delays_nobody_else() -> None:
    budget = RequestBudget()
    async with slot(budget) as ticket:
        budget.observe(ticket, 200, {})
    async with slot(budget) as ticket:
        budget.observe(ticket, 429, {"Retry-After": "5"})
        refused_at = now()
    async with slot(budget) as other:
        pass
    assert other.sent_at - refused_at < LATE  # not 5 s: Retry-After is for the refused one
    assert budget.paused_until == 0.0
    assert budget.rate_limited == 1


async def test_a_burst_of_429s_pauses_every_acquirer_for_retry_after() -> None:
    budget = RequestBudget()
    async with slot(budget) as ticket:
        refuse_in_a_burst(budget, ticket, {"Retry-After": "0.3"})
        refused_at = now()
    assert budget.paused_until == pytest.approx(refused_at + 0.3, abs=SLACK)
    sent: list[float] = []

    async def one(priority: Priority, model_scope: str | None) -> None:
        async with slot(budget, priority, model_scope) as t:
            sent.append(t.sent_at)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, Priority.POLL, None)
        tg.start_soon(one, Priority.SUBMIT, "google/veo-3.1")
        tg.start_soon(one, Priority.OTHER, None)
        tg.start_soon(one, Priority.POLL, "bailian/wan2.6-t2v")
    assert len(sent) == 4
    assert all(0.3 - SLACK <= s - refused_at < 0.3 + LATE for s in sent)
    assert budget.rate_limited == 4


async def test_a_burst_of_429s_without_retry_after_pauses_with_a_jittered_backoff() -> None:
    # time compressed 100 times: the backoff of the fourth 429 in a row is at most 16 s / 100
    budget = RequestBudget(rng=random.Random(14), time_scale=100.0)
    async with slot(budget) as ticket:
        refuse_in_a_burst(budget, ticket, {})
        refused_at = now()
    pause = budget.paused_until - refused_at
    assert 0.0 < pause <= 0.16
    async with slot(budget) as t:
        waited = t.sent_at - refused_at
    assert pause - SLACK <= waited < pause + LATE
    assert budget.rate_limited == 4


async def test_a_burst_of_429s_without_retry_after_pauses_until_the_window_has_room() -> None:
    budget = RequestBudget(time_scale=300.0)  # the documented 60 s window is 0.2 s
    async with slot(budget) as first:
        budget.observe(first, 200, {})
        accepted_at = now()
    await anyio.sleep(0.05)
    async with slot(budget) as ticket:
        refuse_in_a_burst(budget, ticket, {})  # no Retry-After, no rate headers
    # not a jittered fraction of a second: until the oldest accepted request leaves the
    # sliding window, when the server has room again
    assert budget.paused_until == pytest.approx(accepted_at + 0.2, abs=SLACK)
    async with slot(budget) as after:
        assert accepted_at + 0.2 - SLACK <= after.sent_at < accepted_at + 0.2 + LATE


async def test_more_429s_in_a_row_without_retry_after_keep_the_client_paused() -> None:
    budget = RequestBudget(rng=random.Random(1))
    pauses = []
    async with slot(budget) as ticket:
        refuse_in_a_burst(budget, ticket, {})
    for _ in range(6):
        before = budget.paused_until
        budget.observe(ticket, 429, {})
        pauses.append(budget.paused_until - now())
        assert budget.paused_until >= before  # a later 429 never shortens the pause
    assert all(0.0 <= p <= 60.0 for p in pauses)
    assert budget.rate_limited == 10


async def test_polls_go_before_waiting_submissions_after_a_pause() -> None:
    budget = RequestBudget()
    async with slot(budget) as ticket:
        refuse_in_a_burst(budget, ticket, {"Retry-After": "0.2"})
    order: list[str] = []

    async def one(priority: Priority, name: str) -> None:
        async with slot(budget, priority):
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
    async with slot(budget):
        pass  # the next request is now due in 20 ms
    order: list[Priority] = []

    async def one(priority: Priority) -> None:
        async with slot(budget, priority):
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
    async with slot(budget) as ticket:
        budget.observe(
            ticket,
            200,
            {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.2"},
        )
        seen_at = now()
    async with slot(budget) as t:
        waited = t.sent_at - seen_at
    assert 0.2 - SLACK <= waited < 0.2 + LATE
    assert budget.paused_until == 0.0  # a window, not a 429 pause
    assert budget.rate_limited == 0


async def test_a_window_said_to_reset_now_is_probed_a_moment_later() -> None:
    # "Reset: 0" is rounded: the server's window may still have a fraction of a millisecond
    # to run, and a probe sent at once would meet a 429
    budget = RequestBudget()
    async with slot(budget) as ticket:
        budget.observe(ticket, 200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0"})
        seen_at = now()
    async with slot(budget) as probe:
        assert probe.probe
        assert probe.sent_at - seen_at >= 0.005


async def test_window_with_room_admits_at_once_counting_requests_in_flight() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(slot(budget))
        budget.observe(first, 200, {"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "0.3"})
        seen_at = now()
        # remaining=2 counts the one still in flight: one more fits at once
        second = await stack.enter_async_context(slot(budget))
        assert second.sent_at - seen_at < 0.1
        third = await stack.enter_async_context(slot(budget))
        assert third.sent_at - seen_at >= 0.3 - SLACK


async def test_after_the_reset_one_probe_goes_and_its_answer_opens_the_window() -> None:
    budget = RequestBudget()
    async with slot(budget) as ticket:
        budget.observe(ticket, 200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.1"})
        seen_at = now()
    sent: list[float] = []
    answered: list[float] = []

    async def one() -> None:
        async with slot(budget) as t:
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
    async with slot(budget) as ticket:
        budget.observe(ticket, 200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.05"})
    async with slot(budget) as probe:
        budget.observe(probe, 502, {})  # e.g. a proxy's HTML error page
    with anyio.fail_after(0.5):
        async with slot(budget) as t:
            assert t.sent_at >= probe.sent_at


async def test_probe_that_fails_without_an_answer_does_not_block_the_client() -> None:
    budget = RequestBudget()
    async with slot(budget) as ticket:
        budget.observe(ticket, 200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.05"})
    with pytest.raises(ConnectionResetError):
        async with slot(budget):
            raise ConnectionResetError("the transport failed")
    with anyio.fail_after(0.5):
        async with slot(budget) as t:
            assert t.sent_at > 0


@pytest.mark.parametrize("window_on_the_429", [True, False])
async def test_scoped_429_with_room_in_the_window_only_slows_that_scope(
    window_on_the_429: bool,
) -> None:
    budget = RequestBudget()
    room = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "40", "X-RateLimit-Reset": "30"}
    async with slot(budget, Priority.POLL, "bailian/wan2.6-t2v") as ticket:
        budget.observe(ticket, 200, room)
    async with slot(budget, Priority.POLL, "google/veo-3.1") as ticket:
        headers = {"Retry-After": "0.3", **(room if window_on_the_429 else {})}
        budget.observe(ticket, 429, headers)
        refused_at = now()
    async with slot(budget, Priority.POLL, "bailian/wan2.6-t2v") as other:
        pass
    async with slot(budget, Priority.SUBMIT) as unscoped:
        pass
    async with slot(budget, Priority.POLL, "google/veo-3.1") as same:
        pass
    assert other.sent_at - refused_at < 0.1
    assert unscoped.sent_at - refused_at < 0.1
    assert 0.3 - SLACK <= same.sent_at - refused_at < 0.3 + LATE
    assert budget.paused_until < refused_at  # the client as a whole was never paused
    assert budget.rate is None  # nor slowed down
    assert budget.rate_limited == 1


async def test_a_window_spent_by_others_sharing_the_key_is_not_a_narrower_limit() -> None:
    # another process of the same service spent the key's window: the 429 of a submission
    # shows the overall window (same limit) empty, although our last answer showed room
    budget = RequestBudget()
    room = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "40", "X-RateLimit-Reset": "30"}
    spent = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.2"}
    async with slot(budget, Priority.POLL) as ticket:
        budget.observe(ticket, 200, room)
    async with slot(budget, Priority.SUBMIT, "google/veo-3.1") as ticket:
        budget.observe(ticket, 429, spent)
        refused_at = now()
    async with slot(budget, Priority.POLL) as other:
        pass
    assert other.sent_at - refused_at >= 0.2 - SLACK  # everyone waits for the reset
    async with slot(budget, Priority.SUBMIT, "google/veo-3.1") as same:
        pass
    assert same.sent_at - refused_at < 0.2 + LATE  # and no narrower limit was made up


async def burst(budget: RequestBudget, stack: contextlib.AsyncExitStack, n: int) -> list[Ticket]:
    """``n`` requests about 10 ms apart, all still in flight (after a first answer)."""
    async with slot(budget) as first:
        budget.observe(first, 200, {})
    tickets = []
    for _ in range(n):
        tickets.append(await stack.enter_async_context(slot(budget)))
        await anyio.sleep(0.01)
    return tickets


async def test_learned_rate_decreases_once_per_burst() -> None:
    budget = RequestBudget(time_scale=60.0)  # the documented minute is a second here
    async with contextlib.AsyncExitStack() as stack:
        first_burst = await burst(budget, stack, 10)
        budget.observe(first_burst[0], 429, {"Retry-After": "0"})
        # one 429 may be a stray: a cut on trial, to just under the rate sent at now
        # (11 requests in about 0.1 s)
        on_trial = budget.rate
        assert on_trial is not None
        assert 0.7 * 11 / 0.2 < on_trial <= 0.7 * 11 / 0.1
        for ticket in first_burst[1:4]:  # more 429s answering the same burst
            budget.observe(ticket, 429, {"Retry-After": "0"})
        # a burst: 70% of the rate the server's window saw (without a Retry-After the
        # documented minute, a second here): 11 requests in the last second
        decreased = budget.rate
        assert decreased is not None
        assert decreased == pytest.approx(0.7 * 11)
        for ticket in first_burst[4:6]:  # and more, still answering the same burst
            budget.observe(ticket, 429, {"Retry-After": "0"})
        assert budget.rate == decreased
        assert budget.rate_limited == 6

        # a request sent after the decrease meets a 429: that is news, decrease again
        late = await stack.enter_async_context(slot(budget))
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
        refuse_in_a_burst(budget, tickets[0], {"Retry-After": "0.5"})
    assert budget.rate == pytest.approx(0.7 * 11 / 0.5, rel=0.1)


async def test_a_lone_429_after_learning_slows_the_client_without_pausing_it() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        tickets = await burst(budget, stack, 10)
        for ticket in tickets[:5]:
            budget.observe(ticket, 429, {"Retry-After": "0.3"})  # a burst: a pause, a cut
        first_pause = budget.paused_until
        assert first_pause > now()
        await anyio.sleep(0.35)
        for ticket in tickets[5:] * 4:
            budget.observe(ticket, 200, {})  # then a run of answers without 429s
        late = await stack.enter_async_context(slot(budget))
        rate = budget.rate
        assert rate is not None
        budget.observe(late, 429, {"Retry-After": "0.3"})
        assert budget.paused_until == first_pause  # slowed down, not paused
        assert budget.rate == pytest.approx(0.7 * rate)


async def test_learned_rate_climbs_back_additively_on_success() -> None:
    budget = RequestBudget(time_scale=60.0)  # the documented minute is a second here
    async with contextlib.AsyncExitStack() as stack:
        tickets = await burst(budget, stack, 10)
        refuse_in_a_burst(budget, tickets[0], {"Retry-After": "0"})
        halved = budget.rate
        assert halved is not None
        rate = halved
        for _ in range(2):  # the second waits for the rate: the rate holds requests back
            async with slot(budget):
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
    budget = RequestBudget(time_scale=60.0)  # the documented minute is a second here
    async with contextlib.AsyncExitStack() as stack:
        tickets = await burst(budget, stack, 10)
        budget.observe(tickets[0], 429, {"Retry-After": "0"})
        rate = budget.rate
        for _ in range(1000):  # answers, but nobody waited for the rate
            budget.observe(tickets[-1], 200, {})
    assert budget.rate == rate


async def test_learned_rate_paces_later_requests() -> None:
    budget = RequestBudget(time_scale=60.0)  # the documented minute is a second here
    async with contextlib.AsyncExitStack() as stack:
        tickets = await burst(budget, stack, 6)
        budget.observe(tickets[0], 429, {"Retry-After": "0"})
    rate = budget.rate
    assert rate is not None
    sent = []
    for _ in range(4):
        async with slot(budget) as t:
            sent.append(t.sent_at)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(gap >= 1 / rate - SLACK for gap in gaps)


async def test_a_429_with_an_empty_window_pauses_until_its_reset() -> None:
    budget = RequestBudget(rng=random.Random(14))  # a short backoff: about 0.21 s
    async with slot(budget) as ticket:
        budget.observe(ticket, 429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.2"})
        refused_at = now()
    async with slot(budget) as t:
        waited = t.sent_at - refused_at
    assert max(0.2, budget.paused_until - refused_at) - SLACK <= waited < 0.2 + LATE
    assert budget.rate_limited == 1


# -- stray 429s: one 429 is not proof that this client's rate is too high -----------------------


async def refuse_one(budget: RequestBudget, stack: contextlib.AsyncExitStack) -> float:
    """A burst of 11 requests, one of them refused: a cut on trial. Returns the rate on trial."""
    tickets = await burst(budget, stack, 10)
    budget.observe(tickets[0], 429, {"Retry-After": "0.05"})
    for ticket in tickets[1:]:
        budget.observe(ticket, 200, {})
    rate = budget.rate
    assert rate is not None
    return rate


async def answer_after_the_cut(budget: RequestBudget, answers: int, refused_every: int) -> None:
    """``answers`` answers to a request sent after the cut, every ``refused_every``-th a 429."""
    async with slot(budget) as ticket:
        for i in range(1, answers + 1):
            refused = refused_every and i % refused_every == 0
            budget.observe(ticket, 429 if refused else 200, {"Retry-After": "0.05"})


async def test_stray_429_does_not_mark_saturated() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        await refuse_one(budget, stack)
        for _ in range(3):  # these wait for the rate on trial
            async with slot(budget):
                pass
    assert budget.paused_until == 0.0
    assert not budget.saturated()  # a cut on trial does not make requests scarce


async def test_a_cut_that_does_not_lower_the_share_of_429s_is_undone() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        await refuse_one(budget, stack)
        await answer_after_the_cut(budget, 100, refused_every=20)  # still 5% at the lower rate
        assert budget.rate is None  # as before the cut: the 429s are not ours to pace
        # ... and 429s at that share no longer cut anything
        await answer_after_the_cut(budget, 100, refused_every=20)
        assert budget.rate is None
    assert not budget.saturated()
    assert budget.rate_limited == 11


async def test_a_cut_that_lowers_the_share_of_429s_is_kept() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        rate = await refuse_one(budget, stack)
        await answer_after_the_cut(budget, 100, refused_every=0)  # none at the lower rate
        assert budget.rate is not None
        assert budget.rate >= rate  # kept (and climbing back while it holds requests back)


async def test_a_share_of_429s_above_the_strays_cuts_the_rate_again() -> None:
    budget = RequestBudget()
    async with contextlib.AsyncExitStack() as stack:
        await refuse_one(budget, stack)
        await answer_after_the_cut(budget, 100, refused_every=20)
        assert budget.rate is None  # strays at 5%
        for i in range(100):  # then 20%, at full speed: news
            async with slot(budget) as ticket:
                budget.observe(ticket, 429 if i % 5 == 4 else 200, {"Retry-After": "0.05"})
        assert budget.rate is not None


async def test_spent_window_429s_still_cut_the_rate() -> None:
    budget = RequestBudget()
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.1", "Retry-After": "0.1"}
    async with contextlib.AsyncExitStack() as stack:
        tickets = await burst(budget, stack, 10)
        budget.observe(tickets[0], 429, spent)
        refused_at = now()
    assert budget.paused_until == pytest.approx(refused_at + 0.1, abs=SLACK)  # all paused
    assert budget.rate is not None  # and slowed down
    async with slot(budget) as ticket:
        assert ticket.sent_at - refused_at >= 0.1 - SLACK
    assert budget.saturated()  # requests are scarce: the server said so


async def test_absent_reset_assumes_a_60s_sliding_window() -> None:
    budget = RequestBudget(time_scale=300.0)  # the documented 60 s window is 0.2 s
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(slot(budget))
        budget.observe(first, 200, {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "3"})
        seen_at = now()
        # room for three: not one at a time (no probes waiting for each other's answer)
        more = [await stack.enter_async_context(slot(budget)) for _ in range(2)]
        assert all(t.sent_at - seen_at < 0.1 and not t.probe for t in more)
        budget.observe(more[-1], 200, {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0"})
        spent_at = now()
    async with slot(budget) as ticket:
        assert 0.2 - SLACK <= ticket.sent_at - spent_at < 0.2 + LATE  # the window, not a stall
        assert ticket.probe


# -- against the simulator ---------------------------------------------------------------------

VEO = "google/veo-3.1-fast"


def clips(n: int) -> list[dict[str, str]]:
    return [{"model": VEO, "prompt": f"clip {i}: a heron at dawn"} for i in range(n)]


async def test_stray_429s_do_not_slow_the_whole_client(make_client: ClientFactory) -> None:
    # 5% of all requests refused at random, as a gateway or an upstream does
    faults = Faults(rate_limited=0.05, retry_after=0.02)
    async with (
        FakeChuizi(speed=SPEED, seed=3, faults=faults) as sim,
        make_client(sim=sim) as client,
    ):
        videos = await client.generate_many(clips(80))
        assert client.budget.paused_until == 0.0  # never paused as a whole
        assert not client.budget.saturated()  # nor short of requests
    assert len(videos) == 80
    assert sim.counters.generations_created == 80
    assert sim.counters.rate_limited > 0


RESET_SPEED = 240.0
"""The documented 60 s window compressed to 0.25 s, the simulator's window as long."""


@pytest.mark.parametrize("reset_format", RESET_FORMATS)
async def test_a_batch_paces_itself_whatever_the_reset_format(
    make_client: ClientFactory, reset_format: ResetFormat
) -> None:
    limit = RateLimit(limit=20, window=60 / RESET_SPEED, reset_format=reset_format)
    # every answer takes 20 ms: requests sent one at a time would arrive 20 ms apart
    slow = Faults(slow=1.0, slow_seconds=0.02)
    async with (
        FakeChuizi(speed=RESET_SPEED, rate_limit=limit, faults=slow) as sim,
        make_client(sim=sim, time_scale=RESET_SPEED) as client,
    ):
        with anyio.fail_after(20):  # epoch milliseconds once read as an hour's wait
            videos = await client.generate_many(clips(16))
    assert len(videos) == 16
    assert sim.counters.generations_created == 16
    assert sim.counters.rate_limited <= 2
    arrivals = sorted(request.time for request in sim.requests_log)
    assert min(b - a for a, b in itertools.pairwise(arrivals)) < 0.02  # never one at a time
