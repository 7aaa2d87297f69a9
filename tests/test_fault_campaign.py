"""The fault campaign: every kind of fault at once, and nothing lost, doubled or left hanging.

The default run is CI-sized; ``CHUIZI_CAMPAIGN_FULL=1 pytest tests/test_fault_campaign.py -s``
runs 1,000 generations and prints the figures (requests, faults by kind, lag added by faults).
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from collections.abc import Callable, Mapping

import anyio
import attrs
import pytest

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi, Faults, SimGeneration
from chuizi_async.testing._faults import FAULT_KINDS
from chuizi_async.testing._realism import REALISMS, Realism

from .conftest import wait_until

FULL = os.environ.get("CHUIZI_CAMPAIGN_FULL") == "1"
SIZE = 1000 if FULL else 200
SPEED = 100.0
"""Simulator time compression: a 45 s generation takes 0.45 s."""
MODEL = "google/veo-3.1-fast"
TIMEOUT = 1.0
"""The client's request timeout (real seconds); a ``slow`` answer takes longer."""

# Seven kinds, drawn independently at 2% each (drop_after_create: 3%, submissions only):
# about 11% of status checks and 14% of submissions are faulty, 12% of all requests.
FAULTS = Faults(
    rate_limited=0.02,
    server_error=0.02,
    bad_gateway_html=0.02,
    connection_reset=0.02,
    truncated_json=0.02,
    slow=0.02,
    drop_after_create=0.03,
    retry_after=0.05,
    slow_seconds=TIMEOUT * 1.5,
)


KINDS = set(FAULT_KINDS)


def _prompt(i: int) -> str:
    # about 6% are refused by the content policy: their true outcome is a failure
    return f"clip {i} forbidden" if i % 17 == 5 else f"clip {i}"


def _client(server: FakeChuizi, **overrides: object) -> ca.Client:
    options: dict[str, object] = {
        "base_url": server.base_url,
        "time_scale": SPEED,
        "timeout": TIMEOUT,
        "max_retries": 8,
    }
    options.update(overrides)
    return ca.Client(server.api_key, **options)  # type: ignore[arg-type]


@attrs.define
class Outcome:
    """What one request came to on the client's side."""

    prompt: str
    handle: ca.Generation | None = None
    error: BaseException | None = None
    resolutions: int = 0
    resolved_at: float = 0.0


async def _run(
    client: ca.Client, size: int, on_progress: Callable[[int], object] | None = None
) -> list[Outcome]:
    """Submit ``size`` requests at once and wait for each handle to resolve."""
    outcomes = [Outcome(_prompt(i)) for i in range(size)]

    async def one(outcome: Outcome) -> None:
        def resolved(handle: ca.Generation) -> None:
            outcome.resolutions += 1
            outcome.resolved_at = time.monotonic()

        try:
            outcome.handle = await client.submit(MODEL, outcome.prompt, duration=5)
        except ca.ChuiziError as exc:
            outcome.error = exc
            return
        outcome.handle.add_done_callback(resolved)
        with contextlib.suppress(ca.ChuiziError):  # the outcome is checked afterwards
            await outcome.handle

    async with anyio.create_task_group() as tg:
        for outcome in outcomes:
            tg.start_soon(one, outcome)
    return outcomes


def _check_campaign(server: FakeChuizi, outcomes: list[Outcome]) -> None:
    """Every request has one generation, every generation one result, each its true outcome."""
    errors = [o.error for o in outcomes if o.error is not None]
    assert errors == []  # every submission was accepted in the end
    generations = server.generations
    by_prompt = collections.Counter(g.prompt for g in generations.values())
    assert server.counters.generations_created == len(outcomes)  # none created twice
    assert by_prompt == collections.Counter(o.prompt for o in outcomes)  # none lost
    handles = [o.handle for o in outcomes if o.handle is not None]
    assert len({h.id for h in handles}) == len(outcomes) == len(generations)
    for outcome in outcomes:
        handle = outcome.handle
        assert handle is not None and handle.id is not None
        truth = generations[handle.id]
        assert truth.prompt == outcome.prompt
        assert outcome.resolutions == 1
        if truth.status == "completed":
            assert handle.result().url.endswith(f"/videos/{handle.id}.mp4")
        else:
            assert truth.status == "failed"
            error = handle.exception()
            assert isinstance(error, ca.GenerationFailed)
            assert error.generation_id == handle.id
            assert error.message == "Content policy violation"


def _check_safe_campaign(
    generations: Mapping[str, SimGeneration], outcomes: list[Outcome]
) -> list[ca.SubmissionUncertain]:
    """Safe mode: none paid twice, every accepted one to its true outcome, every generation no
    handle knows of behind a request reported uncertain; returns those."""
    per_key = collections.Counter(g.idempotency_key for g in generations.values())
    assert set(per_key.values()) == {1}  # no request created two generations
    uncertain = [o.error for o in outcomes if isinstance(o.error, ca.SubmissionUncertain)]
    others = [o.error for o in outcomes if o.error is not None and o.error not in uncertain]
    assert others == []
    accepted = [o for o in outcomes if o.handle is not None]
    assert len(accepted) + len(uncertain) == len(outcomes)
    for outcome in accepted:  # each accepted one resolved once, to its true outcome
        handle = outcome.handle
        assert handle is not None and handle.id is not None
        assert generations[handle.id].prompt == outcome.prompt
        assert outcome.resolutions == 1
        assert (handle.exception() is None) == (generations[handle.id].status == "completed")
    accepted_ids = {o.handle.id for o in accepted if o.handle is not None}
    uncertain_keys = {error.idempotency_key for error in uncertain}
    # every generation no handle knows of belongs to a request reported uncertain
    unknown = [g for g in generations.values() if g.id not in accepted_ids]
    assert {g.idempotency_key for g in unknown} <= uncertain_keys
    return uncertain


def _lags(server: FakeChuizi, outcomes: list[Outcome]) -> list[float]:
    """Per generation, real seconds from the server having its outcome to the client's."""
    lags = []
    for outcome in outcomes:
        assert outcome.handle is not None and outcome.handle.id is not None
        ready_at = server.ready_at(outcome.handle.id)
        assert ready_at is not None
        lags.append(outcome.resolved_at - ready_at)
    return sorted(lags)


def _figures(
    server: FakeChuizi, client: ca.Client, outcomes: list[Outcome], lags: list[float]
) -> dict[str, object]:
    counters = server.counters
    faults = sum(counters.faults.values())
    resolved = sum(o.resolutions for o in outcomes)
    return {
        "generations requested": len(outcomes),
        "requests sent": counters.requests,
        "  submissions": counters.submissions,
        "  status checks": counters.status_checks,
        "faults injected": f"{faults} ({faults / counters.requests:.1%} of requests)",
        **{f"  {kind}": n for kind, n in sorted(counters.faults.items())},
        "client retries": client.stats.retries,
        "poller transient failures": client.poller_stats.transient_failures,
        "idempotent replays (recovered)": counters.idempotent_replays,
        "generations resolved": resolved,
        "  completed": sum(1 for g in server.generations.values() if g.status == "completed"),
        "  failed (content policy)": sum(
            1 for g in server.generations.values() if g.status == "failed"
        ),
        "lost": len(outcomes) - len({o.handle.id for o in outcomes if o.handle is not None}),
        "created twice": counters.generations_created - len(outcomes),
        "lag p50 (ms real / s server)": _lag_text(lags[len(lags) // 2]),
        "lag max (ms real / s server)": _lag_text(lags[-1]),
    }


def _lag_text(seconds: float) -> str:
    return f"{seconds * 1000:.0f} / {seconds * SPEED:.1f}"


def _print_figures(
    with_faults: dict[str, object], fault_free: dict[str, object], added: float
) -> None:
    width = max(len(k) for k in with_faults)
    lines = [
        "",
        f"== fault campaign: {SIZE} generations, speed x{SPEED:g} ==",
        f"{'':{width}}  {'with faults':>16}  {'fault-free':>16}",
    ]
    for key in with_faults:
        lines.append(f"{key:{width}}  {with_faults[key]!s:>16}  {fault_free.get(key, '-')!s:>16}")
    lines.append(f"{'max lag added by faults':{width}}  {_lag_text(added):>16}")
    print("\n".join(lines))  # noqa: T201 - the figures block, shown with -s


@pytest.mark.slow
async def test_every_generation_resolves_once_to_its_true_outcome_under_every_fault() -> None:
    async with FakeChuizi(speed=SPEED, seed=11, fail_pattern="forbidden") as calm:
        async with _client(calm) as client:
            baseline = await _run(client, SIZE)
        _check_campaign(calm, baseline)
        assert calm.counters.idempotent_replays == 0
        calm_lags = _lags(calm, baseline)
        calm_figures = _figures(calm, client, baseline, calm_lags)

    async with FakeChuizi(speed=SPEED, seed=11, fail_pattern="forbidden", faults=FAULTS) as sim:
        async with _client(sim) as client:
            outcomes = await _run(client, SIZE)
        _check_campaign(sim, outcomes)
        counters = sim.counters
        assert set(counters.faults) == KINDS  # every kind was injected
        assert 0.06 < sum(counters.faults.values()) / counters.requests < 0.18
        # drops after creation and cut answers were recovered by replaying the submission
        assert counters.idempotent_replays >= counters.faults["drop_after_create"] > 0
        lags = _lags(sim, outcomes)
        figures = _figures(sim, client, outcomes, lags)

    _print_figures(figures, calm_figures, lags[-1] - calm_lags[-1])


@pytest.mark.slow
@pytest.mark.parametrize("realism", REALISMS)
async def test_pending_generations_resolve_after_the_server_was_down_a_while(
    realism: Realism,
) -> None:
    size = SIZE // 2
    down: list[ca.Generation] = []
    # against a server that ignores Idempotency-Key only safe mode never pays twice
    mode = "safe" if realism == "harsh" else "idempotent"
    async with (
        FakeChuizi(speed=SPEED, seed=5, realism=realism) as sim,
        # enough retries (backoff compressed like the server) to outlast the outage
        _client(sim, max_retries=40, retry_submissions=mode) as client,
    ):

        async def outage() -> None:
            await wait_until(lambda: len(sim.generations) >= size // 2, timeout=10)
            await sim.stop_listening()
            down.extend(client.pending)
            await anyio.sleep(0.6)  # down for a minute of server time
            await sim.start_listening()

        async with anyio.create_task_group() as tg:
            tg.start_soon(outage)
            outcomes = await _run(client, size)
        if mode == "safe":
            _check_safe_campaign(sim.generations, outcomes)
        else:
            _check_campaign(sim, outcomes)
        assert down and all(h.done() for h in down)
        assert client.poller_stats.transient_failures > 0  # the outage was felt
        assert client.pending == []


@pytest.mark.slow
async def test_safe_mode_under_every_fault_never_creates_a_generation_twice() -> None:
    """The same campaign against the harsh simulator: ``Idempotency-Key`` ignored, the API
    reference's routes and words, answers wrapped, the video in a list, no cost in the status,
    404s for fresh ids."""
    async with FakeChuizi(
        speed=SPEED, seed=11, fail_pattern="forbidden", faults=FAULTS, realism="harsh"
    ) as sim:
        async with _client(sim, retry_submissions="safe") as client:
            outcomes = await _run(client, SIZE // 2)
        generations = sim.generations
    uncertain = _check_safe_campaign(generations, outcomes)
    assert uncertain  # answers were lost, and those requests were not sent again
