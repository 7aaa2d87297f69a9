"""``PollPolicy`` (validated, documented defaults) and the ``Schedule`` it drives."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import pytest

import chuizi_async as ca
from chuizi_async._policy import Schedule

UNKNOWN_MODEL = "someone/not-in-the-catalogue"


def schedule(seed: int = 0, time_scale: float = 1.0, **policy: Any) -> Schedule:
    return Schedule(ca.PollPolicy(**policy), rng=random.Random(seed), time_scale=time_scale)


def test_defaults_match_the_documented_values() -> None:
    policy = ca.PollPolicy()
    assert policy.interval == 10.0
    assert policy.max_in_flight == 16
    assert policy.give_up_after == 3600.0
    assert policy.first_poll_after is None
    assert policy.backoff == 1.0
    assert policy.interval <= policy.max_interval


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interval", 0),
        ("interval", -1.0),
        ("interval", float("nan")),
        ("interval", float("inf")),
        ("max_interval", 0),
        ("backoff", 0),
        ("give_up_after", 0),
        ("give_up_after", -5),
        ("time_scale", 0),
        ("max_requests_per_second", 0),
        ("max_requests_per_second", -2.5),
        ("first_poll_after", -1),
        ("first_poll_after", float("nan")),
        ("interval", True),
        ("not_found_grace", -1),
        ("not_found_grace", float("inf")),
        ("time_scale", "1000"),
    ],
)
def test_invalid_number_is_refused_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ca.InvalidRequest, match=f"PollPolicy.{field}"):
        kwargs: dict[str, Any] = {field: value}
        ca.PollPolicy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"jitter": 1.0}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"backoff": 0.5}, "backoff"),
        ({"interval": 40.0}, "max_interval"),
        ({"interval": 10.0, "max_interval": 5.0}, "max_interval"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_in_flight": 2.5}, "max_in_flight"),
        ({"max_in_flight": True}, "max_in_flight"),
        ({"jitter": float("nan")}, "jitter"),
        ({"jitter": "0.1"}, "jitter"),
    ],
)
def test_inconsistent_policy_is_refused_naming_the_field(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ca.InvalidRequest, match=f"PollPolicy.{field}"):
        ca.PollPolicy(**kwargs)


def test_policy_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        ca.PollPolicy(interval=0)


def test_first_poll_after_zero_is_allowed() -> None:
    assert ca.PollPolicy(first_poll_after=0).first_poll_after == 0


def test_every_checks_at_one_fixed_interval() -> None:
    policy = ca.PollPolicy.every(5)
    assert policy.first_poll_after == 5
    assert policy.interval == 5
    assert policy.max_interval == 5


def test_every_keeps_other_settings() -> None:
    policy = ca.PollPolicy.every(5, max_interval=20, give_up_after=100, max_in_flight=4)
    assert policy.interval == 5
    assert policy.max_interval == 20
    assert policy.give_up_after == 100
    assert policy.max_in_flight == 4


def test_every_raises_max_interval_to_the_interval() -> None:
    assert ca.PollPolicy.every(60).max_interval == 60
    assert ca.PollPolicy.every(60, max_interval=10).max_interval == 60


def test_every_validates_its_interval() -> None:
    with pytest.raises(ca.InvalidRequest, match="interval"):
        ca.PollPolicy.every(0)


# -- Schedule.plan_first ------------------------------------------------------------------------


def first(s: Schedule, model: str | None) -> float:
    """The first delay of a generation that does not scout (the scouts are planned first)."""
    while True:
        delay, scout = s.plan_first(model)
        if not scout:
            return delay


def test_first_poll_after_given_is_the_first_delay_of_every_generation() -> None:
    s = schedule(first_poll_after=7, jitter=0)
    assert [s.plan_first("google/veo-3.1") for _ in range(3)] == [(7, False)] * 3
    assert s.plan_first(None) == (7, False)


@pytest.mark.parametrize("model", sorted(ca.MODELS))
def test_a_cold_model_is_planned_from_its_prior(model: str) -> None:
    s = schedule(jitter=0)
    prior = ca.MODELS[model].typical_latency
    assert s.typical_latency(model) == prior
    delay, scout = s.plan_first(model)
    assert scout and max(10.0, 0.2 * prior) <= delay <= max(10.0, 0.35 * prior)
    assert first(s, model) == pytest.approx(3 * prior)  # the others wait for the scouts


def test_an_alias_uses_its_model_prior() -> None:
    s = schedule(jitter=0)
    assert s.typical_latency("veo-3.1") == ca.MODELS["google/veo-3.1"].typical_latency
    assert first(s, "veo-3.1") == 3 * ca.MODELS["google/veo-3.1"].typical_latency


def test_an_unknown_model_uses_a_default_prior() -> None:
    s = schedule(jitter=0)
    assert s.typical_latency(UNKNOWN_MODEL) == 60.0
    assert s.typical_latency(None) == 60.0
    assert first(s, UNKNOWN_MODEL) == 180.0


def test_a_scout_is_never_checked_before_the_interval() -> None:
    s = schedule(jitter=0, interval=100, max_interval=100)
    assert s.plan_first("google/veo-3.1-fast") == (100, True)


def test_learned_latencies_replace_the_prior_after_five_samples() -> None:
    s = schedule(jitter=0)
    model = "google/veo-3.1"
    for latency in (30.0, 40.0, 50.0, 60.0):
        s.learn(model, latency)
    assert s.typical_latency(model) == 90.0  # four samples: still the prior
    s.learn(model, 20.0)
    assert s.typical_latency(model) == 20.0  # the earliest of five (5th percentile)


def test_learned_latency_is_the_5th_percentile() -> None:
    s = schedule(jitter=0)
    for latency in range(1, 101):
        s.learn("bailian/wan2.6-t2v", float(latency))
    assert s.typical_latency("bailian/wan2.6-t2v") == 6.0


def test_once_completions_are_seen_the_first_check_is_where_they_begin() -> None:
    s = schedule(jitter=0)
    for _ in range(10):
        s.learn("google/veo-3.1-fast", 20.0)
    delays = [s.plan_first("google/veo-3.1-fast") for _ in range(50)]
    assert all(not scout and 20.0 <= delay <= 20.0 + 0.5 * 10 for delay, scout in delays)


def test_learning_is_per_model() -> None:
    s = schedule(jitter=0)
    for _ in range(10):
        s.learn("google/veo-3.1-fast", 20.0)
    assert s.typical_latency("google/veo-3.1-fast") == 20.0
    assert s.typical_latency("google/veo-3.1") == 90.0
    assert s.plan_first("google/veo-3.1")[1]  # still cold: a scout


@pytest.mark.parametrize("latency", [float("nan"), float("inf"), -1.0])
def test_unusable_latencies_are_not_learned(latency: float) -> None:
    s = schedule(jitter=0)
    for _ in range(10):
        assert s.learn("google/veo-3.1", latency) is None
        assert s.learn(None, 1.0) is None
    assert s.typical_latency("google/veo-3.1") == 90.0


def test_time_scale_divides_every_delay() -> None:
    scaled = schedule(jitter=0, time_scale=100, interval=10, max_interval=30, backoff=2)
    assert scaled.typical_latency("google/veo-3.1") == pytest.approx(0.9)
    assert scaled.typical_latency(UNKNOWN_MODEL) == pytest.approx(0.6)
    assert first(scaled, "google/veo-3.1") == pytest.approx(2.7)
    assert scaled.next_delay(1) == pytest.approx(0.1)
    assert scaled.next_delay(5) == pytest.approx(0.3)
    given = schedule(jitter=0, time_scale=100, first_poll_after=50)
    assert given.plan_first(None)[0] == pytest.approx(0.5)


def test_time_scale_applies_to_learned_latencies() -> None:
    s = schedule(jitter=0, time_scale=10)
    for _ in range(5):
        s.learn("google/veo-3.1", 40.0)  # server seconds, as x_chuizi.latency_ms says
    assert s.typical_latency("google/veo-3.1") == pytest.approx(4.0)
    assert 4.0 <= s.plan_first("google/veo-3.1")[0] <= 4.5


@pytest.mark.parametrize("jitter", [0.1, 0.3, 0.5])
def test_jitter_keeps_delays_within_bounds(jitter: float) -> None:
    s = schedule(seed=3, jitter=jitter, first_poll_after=20, interval=10, max_interval=10)
    firsts = [s.plan_first(None)[0] for _ in range(500)]
    nexts = [s.next_delay(3) for _ in range(500)]
    assert all(20 * (1 - jitter) <= d <= 20 * (1 + jitter) for d in firsts)
    assert all(10 * (1 - jitter) <= d <= 10 * (1 + jitter) for d in nexts)
    # the spread is really used, so that a batch does not poll in lockstep
    assert max(nexts) - min(nexts) > 10 * jitter


def test_zero_jitter_is_exact() -> None:
    s = schedule(jitter=0, interval=12, max_interval=12)
    assert {s.next_delay(n) for n in range(1, 20)} == {12.0}


def test_next_delay_grows_with_backoff_up_to_max_interval() -> None:
    s = schedule(jitter=0, interval=10, max_interval=30, backoff=2)
    assert [s.next_delay(n) for n in range(6)] == [10, 10, 20, 30, 30, 30]
    assert s.next_delay(10_000) == 30


def test_next_delay_without_backoff_is_the_interval() -> None:
    s = schedule(jitter=0)
    assert [s.next_delay(n) for n in range(1, 50)] == [10.0] * 49


def test_retry_delay_is_bounded_by_max_interval() -> None:
    s = schedule(seed=5, interval=10, max_interval=30)
    delays = [s.retry_delay(n) for n in range(40)]
    assert all(0 < d <= 30 for d in delays)


def check_times(s: Schedule, model: str, horizon: float) -> list[float]:
    """When the checks of a lone generation happen, until one lands at or after ``horizon``."""
    t, scout = s.plan_first(model)
    times = [t]
    while t < horizon:
        t += s.next_delay(len(times), model, age=t, scouting_for=1 if scout else 0)
        times.append(t)
    return times


@pytest.mark.parametrize("model", sorted(ca.MODELS))
def test_default_policy_checks_no_more_often_than_every_10_s_on_average(model: str) -> None:
    s = Schedule(ca.PollPolicy(), rng=random.Random(11))
    latency = ca.MODELS[model].typical_latency
    for horizon in (latency / 2, latency, 2 * latency, 600.0, 3600.0):
        times = check_times(s, model, horizon)
        assert times[-1] / len(times) >= 10.0, (model, horizon)


# -- the adaptive schedule of the default policy ------------------------------------------------

VEO = "google/veo-3.1-fast"  # prior: 45 s


def test_a_cold_model_gets_a_few_scouts_and_the_others_wait_for_them() -> None:
    s = schedule(jitter=0)
    plans = [s.plan_first(VEO) for _ in range(20)]
    scouts = [delay for delay, scout in plans if scout]
    waiting = [delay for delay, scout in plans if not scout]
    assert len(scouts) == 10
    assert all(10.0 <= d <= 0.35 * 45 for d in scouts)  # early, never before the interval
    assert waiting == [3 * 45.0] * 10  # at the latest; brought forward by the scouts


def test_the_first_completion_brings_the_waiting_checks_forward() -> None:
    s = schedule(jitter=0)
    for _ in range(10):
        s.plan_first(VEO)
    assert s.learn(VEO, 17.0) == 17.0  # completions begin at 17 s: pull the others in
    assert s.learn(VEO, 19.0) is None  # later ones change nothing
    assert s.learn(VEO, 12.0) == 12.0  # an earlier one does
    delay, scout = s.plan_first(VEO)
    assert not scout and 12.0 <= delay <= 12.0 + 0.35 * 10


def test_completions_do_not_bring_forward_an_explicit_first_poll_after() -> None:
    s = schedule(jitter=0, first_poll_after=30.0)
    for _ in range(10):
        assert s.plan_first(VEO) == (30.0, False)
    assert s.learn(VEO, 5.0) is None  # the user's schedule, not the learned one


def test_a_lone_scout_checks_no_more_often_than_the_interval() -> None:
    s = schedule(jitter=0)
    # too few wait for it: after its early check, back to the catalogue's guess (45 s)
    assert s.next_delay(1, VEO, age=12.0, scouting_for=1) == 33.0
    assert s.next_delay(2, VEO, age=45.0, scouting_for=1) == 10.0
    # scouting for a large batch: often while young, the delay growing with age
    assert s.next_delay(1, VEO, age=12.0, scouting_for=300) == pytest.approx(2.4)
    assert s.next_delay(1, VEO, age=40.0, scouting_for=300) == pytest.approx(8.0)
    assert s.next_delay(1, VEO, age=200.0, scouting_for=300) == 10.0


def test_a_scout_that_ends_before_anything_is_learned_is_replaced() -> None:
    s = schedule(jitter=0)
    for _ in range(10):
        s.plan_first(VEO)
    assert s.scout_ended(VEO)  # failed, say: another one must scout
    s.learn(VEO, 20.0)
    assert not s.scout_ended(VEO)  # learned: no more scouts needed


def test_the_mean_latency_is_that_of_the_samples_kept() -> None:
    s = schedule()
    for i in range(1000):
        s.learn(VEO, float(i))
    seen = s._models[VEO].seen
    assert len(seen.ordered) == 256
    assert seen.mean == pytest.approx(statistics.fmean(range(1000 - 256, 1000)))


@pytest.mark.parametrize(("lo", "hi"), [(15, 25), (40, 80), (120, 300)])
def test_the_learned_grid_beats_the_10_s_loop_on_checks_and_lag(lo: int, hi: int) -> None:
    """Once completion times are known, a generation's checks stay under the provider's
    loop's, and the median detection lag is at most half of the loop's (5 s)."""
    rng = random.Random(lo)
    s = Schedule(ca.PollPolicy(), rng=random.Random(1))
    for _ in range(300):
        s.plan_first(VEO)
    for _ in range(200):
        s.learn(VEO, rng.uniform(lo, hi))
    ours, loop, lags = [], [], []
    for _ in range(400):
        finish = rng.uniform(lo, hi)
        t, _ = s.plan_first(VEO)
        checks = 1
        while t < finish:
            t += s.next_delay(checks, VEO, age=t)
            checks += 1
        ours.append(checks)
        lags.append(t - finish)
        loop.append(math.ceil(finish / 10))
    assert sum(ours) <= sum(loop)
    assert statistics.median(lags) <= 2.5


def test_a_saturated_budget_aims_the_first_check_late() -> None:
    s = Schedule(ca.PollPolicy(jitter=0), saturated=lambda: True)
    delay, scout = s.plan_first(VEO)
    assert not scout
    assert delay == pytest.approx(45 * 1.3)
