"""The session: configuration, submissions, handles, status and lifecycle, against the simulator."""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import anyio
import attrs
import pytest
from aiohttp import web

import chuizi_async as ca
from chuizi_async._retries import BACKOFF_BASE, BACKOFF_CAP, MAX_TIMEOUTS
from chuizi_async.testing import FakeChuizi, Faults

from .conftest import SPEED, ClientFactory, Loopback, wait_until

pytestmark = pytest.mark.both_realisms  # the core runs against the harsh simulator too

VEO = "google/veo-3.1-fast"

# -- configuration -----------------------------------------------------------------------------


def test_missing_key_names_the_environment_variable() -> None:
    with pytest.raises(ca.ChuiziError, match="CHUIZI_API_KEY"):
        ca.Client()


def test_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUIZI_API_KEY", "ck-" + "a" * 32)
    monkeypatch.setenv("CHUIZI_BASE_URL", "http://127.0.0.1:9/v1/")
    client = ca.Client()
    assert client.base_url == "http://127.0.0.1:9/v1"


def test_default_base_url_is_the_providers() -> None:
    assert ca.Client("ck-x").base_url == "https://api.chuizi.ai/v1"


@pytest.mark.parametrize("url", ["http://api.example.com/v1", "http://10.0.0.5:8080/v1"])
def test_plain_http_to_a_remote_host_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="https is required") as info:
        ca.Client("ck-x", base_url=url)
    assert isinstance(info.value, ca.ChuiziError)


def test_allow_insecure_http_accepts_a_remote_http_host() -> None:
    client = ca.Client("ck-x", base_url="http://api.example.com/v1", allow_insecure_http=True)
    assert client.base_url == "http://api.example.com/v1"


def test_bad_status_route_is_refused() -> None:
    with pytest.raises(ca.InvalidRequest, match="status_route"):
        ca.Client("ck-x", status_route="poll")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "named", "allowed"),
    [
        ({"time_scale": 0}, "time_scale", "> 0"),
        ({"time_scale": float("nan")}, "time_scale", "> 0"),
        ({"time_scale": "1000"}, "time_scale", "> 0"),
        ({"limits": {"max_connections": 8}}, "limits", "Limits"),
        ({"timeout": 0}, "timeout", "> 0"),
        ({"timeout": -1}, "timeout", "> 0"),
        ({"timeout": float("nan")}, "timeout", "> 0"),
        ({"timeout": float("inf")}, "timeout", "> 0"),
        ({"timeout": True}, "timeout", "> 0"),
        ({"timeout": "30"}, "timeout", "> 0"),
        ({"max_retries": -1}, "max_retries", ">= 0"),
        ({"max_retries": False}, "max_retries", ">= 0"),
        ({"max_retries": 2.0}, "max_retries", ">= 0"),
        ({"poll": {"interval": 5}}, "poll", "PollPolicy"),
    ],
)
def test_nonsense_settings_are_refused_naming_argument_value_and_range(
    kwargs: dict[str, object], named: str, allowed: str
) -> None:
    with pytest.raises(ValueError) as info:
        ca.Client("ck-x", **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert f"Client({named}=...)" in message
    assert allowed in message
    assert repr(kwargs[named]) in message
    assert isinstance(info.value, ca.InvalidRequest)


def test_repr_and_vars_never_show_the_key() -> None:
    key = "ck-" + "S3cr3t" * 5 + "xy"
    client = ca.Client(key)
    assert key not in repr(client)
    assert key not in str(client)
    assert all(key not in repr(value) for value in vars(client).values())


# -- submit and generate -----------------------------------------------------------------------


async def test_generate_returns_the_video_with_a_decimal_cost(
    client: ca.Client, server: FakeChuizi
) -> None:
    video = await client.generate(VEO, "a cat watching rain", duration=5)
    assert video.url.endswith(f"/videos/{video.id}.mp4")
    if not server.cost_in_status:  # the API reference: the cost is in the billing record only
        assert video.cost is None
        video = attrs.evolve(video, cost=(await client.billing(video)).cost)
    assert video.cost == Decimal("0.15")
    assert isinstance(video.cost, Decimal)
    assert video.duration_seconds == 5
    assert video.latency_ms is not None and video.latency_ms > 0
    assert video.model == VEO
    assert server.counters.submissions == 1


async def test_submit_returns_at_acceptance_and_the_handle_resolves_later(
    client: ca.Client, server: FakeChuizi
) -> None:
    server_manual = server
    handle = await client.submit(VEO, "slow one")
    assert handle.id is not None and handle.id.startswith("gen-")
    assert handle.model == VEO
    assert handle.request is not None and handle.request.prompt == "slow one"
    video = await handle
    assert video.id == handle.id
    assert handle.done() and handle.exception() is None and handle.result() is video
    assert handle.status is not None and handle.status.state == "completed"
    assert server_manual.counters.generations_created == 1


async def test_a_failed_generation_raises_generation_failed_with_id_and_message(
    client: ca.Client,
) -> None:
    handle = await client.submit(VEO, "something forbidden")
    with pytest.raises(ca.GenerationFailed) as info:
        await handle
    assert info.value.generation_id == handle.id
    assert info.value.message == "Content policy violation"
    assert info.value.error_type == "invalid_request_error"
    assert isinstance(handle.exception(), ca.GenerationFailed)


async def test_submit_sends_the_json_body_and_an_idempotency_key(
    client: ca.Client, server: FakeChuizi
) -> None:
    await client.submit(
        VEO, "a fox", duration=4, aspect_ratio="4:3", watermark=False, extra_body={"seed": 7}
    )
    (post,) = [r for r in server.requests_log if r.method == "POST"]
    assert post.json == {
        "model": VEO,
        "prompt": "a fox",
        "duration": 4,
        "aspect_ratio": "4:3",
        "watermark": False,
        "seed": 7,
    }
    key = post.header("Idempotency-Key")
    assert key is not None and len(key) >= 16
    assert post.header("Authorization") == f"Bearer {server.api_key}"


async def test_image_bytes_are_sent_as_a_data_uri(client: ca.Client, server: FakeChuizi) -> None:
    handle = await client.submit("bailian/wan2.6-i2v", "animate it", image=b"\x89PNG fake")
    await handle
    (post,) = [r for r in server.requests_log if r.method == "POST"]
    assert isinstance(post.json, dict)
    assert post.json["image_url"].startswith("data:image/png;base64,")


async def test_invalid_requests_are_refused_before_anything_is_sent(
    client: ca.Client, server: FakeChuizi
) -> None:
    with pytest.raises(ca.InvalidRequest, match=r"1\.\.8"):
        await client.submit(VEO, "too long", duration=30)
    with pytest.raises(ca.InvalidRequest, match="blank"):
        await client.submit(VEO, "   ")
    with pytest.raises(ca.InvalidRequest, match="image"):
        await client.submit("bailian/wan2.6-i2v", "no image")
    assert server.counters.requests == 0


async def test_an_unknown_model_is_passed_through_and_the_404_is_not_retried(
    client: ca.Client, server: FakeChuizi
) -> None:
    with pytest.raises(ca.NotFoundError) as info:
        await client.submit("acme/unknown-model", "a cat", duration=99)
    assert info.value.status_code == 404
    assert server.counters.submissions == 1


async def test_a_wrong_key_raises_authentication_error_without_retrying(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    async with make_client(api_key="ck-" + "0" * 32) as client:
        with pytest.raises(ca.AuthenticationError) as info:
            await client.submit(VEO, "a cat")
    assert info.value.status_code == 401
    assert server.counters.submissions == 1


async def test_retries_reuse_one_idempotency_key_and_never_pay_twice(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    server.faults = Faults(drop_after_create=0.3, server_error=0.1, retry_after=0.01)
    if not server.honour_idempotency:
        # the key is ignored: only safe mode never pays twice (and says which it cannot tell)
        async with make_client(max_retries=12, retry_submissions="safe") as client:
            results = await asyncio.gather(
                *(client.submit(VEO, f"clip {i}") for i in range(20)), return_exceptions=True
            )
        uncertain = [r for r in results if isinstance(r, ca.SubmissionUncertain)]
        assert len(uncertain) + sum(isinstance(r, ca.Generation) for r in results) == 20
        per_key = collections.Counter(g.idempotency_key for g in server.generations.values())
        assert set(per_key.values()) == {1}  # no key created two generations
        return
    async with make_client(max_retries=12) as client:
        handles = [await client.submit(VEO, f"clip {i}") for i in range(20)]
        server.faults = None
        await asyncio.gather(*(h.wait() for h in handles))
    assert server.counters.generations_created == 20
    assert len({h.id for h in handles}) == 20
    assert server.counters.idempotent_replays >= 1
    keys_by_generation: dict[str, set[str]] = {}
    for gen in server.generations.values():
        assert gen.idempotency_key is not None
        keys_by_generation.setdefault(gen.id, set()).add(gen.idempotency_key)
    posts = [r for r in server.requests_log if r.method == "POST"]
    assert len(posts) > 20  # some were retried ...
    assert len({r.header("Idempotency-Key") for r in posts}) == 20  # ... under the same key


async def test_retries_give_up_after_max_retries(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    server.faults = Faults(server_error=1.0)
    async with make_client(max_retries=2) as client:
        with pytest.raises(ca.ServerError) as info:
            await client.submit(VEO, "a cat")
    assert info.value.status_code == 500
    assert server.counters.submissions == 3


async def test_an_html_502_becomes_a_clear_server_error(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    server.faults = Faults(bad_gateway_html=1.0)
    async with make_client(max_retries=0) as client:
        with pytest.raises(ca.ServerError, match="502 with a text/html answer"):
            await client.submit(VEO, "a cat")


@pytest.mark.parametrize(
    ("knobs", "model", "error", "code"),
    [
        ({"client_key": "ck-" + "0" * 32}, VEO, ca.AuthenticationError, "invalid_api_key"),
        ({"balance": "0.01"}, VEO, ca.InsufficientBalanceError, "insufficient_quota"),
        ({"daily_limit": "0.01"}, VEO, ca.PermissionDeniedError, "daily_limit_exceeded"),
        ({"allowed_models": ["veo-3.1"]}, VEO, ca.PermissionDeniedError, "model_not_allowed"),
        ({}, "acme/unknown-model", ca.NotFoundError, "model_not_found"),
        ({"faults": Faults(rate_limited=1.0)}, VEO, ca.RateLimitError, "rate_limit_exceeded"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_an_api_error_carries_the_documented_code(
    make_client: ClientFactory,
    knobs: dict[str, object],
    model: str,
    error: type[ca.APIError],
    code: str,
) -> None:
    knobs = dict(knobs)
    key = knobs.pop("client_key", None)  # a key the server does not know
    sim = FakeChuizi(speed=1000, **knobs)  # type: ignore[arg-type]
    async with sim, make_client(sim=sim, api_key=key or sim.api_key, max_retries=0) as client:
        with pytest.raises(error) as info:
            await client.submit(model, "a cat")
    assert info.value.code == code
    assert sim.counters.generations_created == 0


# -- request ids -------------------------------------------------------------------------------


async def test_every_api_request_carries_a_fresh_request_id_and_the_media_host_gets_none(
    make_client: ClientFactory, server: FakeChuizi, tmp_path: Path
) -> None:
    server.faults = Faults(server_error=0.3, retry_after=0.01)
    async with make_client(max_retries=10) as client:
        videos = await client.generate_many([{"model": VEO, "prompt": f"p{i}"} for i in range(5)])
        server.faults = None
        assert isinstance(videos[0], ca.Video)
        await client.download(videos[0], tmp_path)
    ids = [r.header("X-Request-Id") for r in server.requests_log]
    assert server.counters.faults["server_error"] > 0  # retries happened ...
    assert all(i is not None and re.fullmatch(r"req_[0-9a-f]{16}", i) for i in ids)
    assert len(set(ids)) == len(ids)  # ... each attempt under its own id
    assert server.media_log and all(r.header("X-Request-Id") is None for r in server.media_log)


async def test_an_api_error_carries_the_servers_request_id(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    async with make_client() as client:
        with pytest.raises(ca.NotFoundError) as info:
            await client.submit("acme/unknown-model", "a cat")
    sent = server.requests_log[-1].header("X-Request-Id")
    assert info.value.request_id is not None
    assert info.value.request_id == sent  # the simulator echoes what it got


async def test_without_an_echo_the_error_carries_the_request_id_that_was_sent(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    server.echo_request_id = False
    async with make_client() as client:
        with pytest.raises(ca.NotFoundError) as info:
            await client.retrieve("gen-0000000000000000")
    sent = {r.header("X-Request-Id") for r in server.requests_log}
    assert info.value.request_id in sent


async def test_a_retried_request_is_logged_with_its_request_id(
    make_client: ClientFactory, server: FakeChuizi, caplog: pytest.LogCaptureFixture
) -> None:
    server.faults = Faults(server_error=1.0, retry_after=0.01)
    caplog.set_level(logging.DEBUG, logger="chuizi_async")
    async with make_client(max_retries=1) as client:
        with pytest.raises(ca.ServerError) as info:
            await client.submit(VEO, "a cat")
    first, last = (r.header("X-Request-Id") for r in server.requests_log)
    assert info.value.request_id == last
    messages = [r.getMessage() for r in caplog.records]
    retry_lines = [m for m in messages if "retrying" in m]
    assert retry_lines and f"[request id {first}]" in retry_lines[0]
    assert any(m.startswith("-> POST") and f"[{last}]" in m for m in messages)
    assert any(m.startswith("<- 500") and f"[{last}]" in m for m in messages)  # the echo


# -- handles -----------------------------------------------------------------------------------


@pytest.fixture
def manual_server(server: FakeChuizi) -> FakeChuizi:
    server.auto_complete = False
    return server


async def test_wait_with_timeout_raises_and_keeps_tracking(
    client: ca.Client, manual_server: FakeChuizi
) -> None:
    handle = await client.submit(VEO, "a cat")
    with pytest.raises(ca.GenerationTimeout) as info:
        await handle.wait(timeout=0.05)
    assert info.value.generation_id == handle.id
    assert not handle.done()
    assert handle in client.pending
    assert handle.id is not None
    manual_server.complete(handle.id)
    video = await handle.wait(timeout=5)
    assert video.id == handle.id


async def test_generate_timeout_raises_generation_timeout_and_stays_tracked(
    client: ca.Client, manual_server: FakeChuizi
) -> None:
    with pytest.raises(ca.GenerationTimeout):
        await client.generate(VEO, "a cat", timeout=0.05)
    # the timeout may have come while the submission was on the wire: it goes on
    await wait_until(lambda: len(client.pending) == 1)


class SilentAPI(Loopback):
    """Accepts connections and reads requests, answers none (or, with ``answer_after``, a
    submission late, and every status as processing)."""

    def __init__(self, answer_after: float | None = None) -> None:
        self.received: list[str] = []
        self.answer_after = answer_after

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(f"{request.method} {request.path}")
        if self.answer_after is None:
            await asyncio.Event().wait()  # never: the test's end cuts it
        elif request.method == "POST":
            await asyncio.sleep(self.answer_after)
        return web.json_response({"id": "gen-0123456789abcdef", "status": "processing"})

    def client(self, **options: Any) -> ca.Client:
        options.setdefault("time_scale", SPEED)
        return ca.Client("ck-" + "a" * 32, base_url=f"{self.base_url}/v1", **options)


async def test_generate_timeout_bounds_a_submission_the_server_never_answers() -> None:
    async with SilentAPI() as api, api.client(timeout=1.0) as client:
        with anyio.fail_after(0.9), pytest.raises(ca.GenerationTimeout) as info:
            await client.generate(VEO, "a cat", timeout=0.3)  # not the request's 1 s
        assert "no answer to the submission within 0.3 s" in str(info.value)
        assert info.value.generation_id is None
    assert set(api.received) == {"POST /v1/videos/generations"}  # went on until aclose()


async def test_a_submission_answered_after_the_timeout_is_tracked() -> None:
    async with SilentAPI(answer_after=0.4) as api, api.client() as client:
        with pytest.raises(ca.GenerationTimeout, match=r"client\.pending"):
            await client.generate(VEO, "a cat", timeout=0.1)
        await wait_until(lambda: client.pending)  # the POST went on in the client
        assert [h.id for h in client.pending] == ["gen-0123456789abcdef"]
    assert api.received.count("POST /v1/videos/generations") == 1  # never sent twice


@pytest.mark.parametrize("timeout", [-1, 0, float("nan"), True, "5"])
async def test_nonsense_generate_timeouts_are_refused_before_anything_is_sent(
    client: ca.Client, server: FakeChuizi, timeout: Any
) -> None:
    with pytest.raises(ca.InvalidRequest, match=r"generate\(timeout=\.\.\.\) must be"):
        await client.generate(VEO, "a cat", timeout=timeout)
    with pytest.raises(ca.InvalidRequest, match=r"wait\(timeout=\.\.\.\)"):
        await ca.Generation("gen-0123456789abcdef").wait(-1 if timeout == 0 else timeout)
    assert server.counters.requests == 0


async def test_wait_with_a_zero_timeout_only_looks(
    client: ca.Client, manual_server: FakeChuizi
) -> None:
    handle = await client.submit(VEO, "a cat")
    with pytest.raises(ca.GenerationTimeout):
        await handle.wait(0)
    assert handle in client.pending


async def test_a_silent_server_gets_a_clear_error_after_a_few_attempts() -> None:
    async with SilentAPI() as api, api.client(timeout=0.2, max_retries=10) as client:
        with pytest.raises(ca.APITimeoutError) as info:
            await client.list_models()
    assert len(api.received) == MAX_TIMEOUTS  # not max_retries + 1
    message = str(info.value)
    assert f"no answer from {api.base_url}/v1/models within 0.2 s" in message
    assert f"({MAX_TIMEOUTS} attempts)" in message
    assert isinstance(info.value.__cause__, TimeoutError)  # aiohttp's, chained


def test_by_default_a_silent_server_gets_its_error_well_under_a_minute() -> None:
    client = ca.Client("ck-x")
    attempts = min(client.max_retries + 1, MAX_TIMEOUTS)
    backoff = sum(min(BACKOFF_CAP, BACKOFF_BASE * 2**n) for n in range(attempts - 1))
    assert client.timeout * attempts + backoff <= 35.0  # was 5 x 60 s + backoff: 307 s


async def test_a_cancelled_awaiter_does_not_stop_tracking(
    client: ca.Client, manual_server: FakeChuizi
) -> None:
    handle = await client.submit(VEO, "a cat")
    with anyio.move_on_after(0.05):
        await handle
    assert handle in client.pending
    assert handle.id is not None
    manual_server.complete(handle.id)
    assert (await handle).id == handle.id


async def test_cancel_stops_tracking_and_raises_generation_cancelled(
    client: ca.Client, manual_server: FakeChuizi
) -> None:
    handle = await client.submit(VEO, "a cat")
    assert handle.cancel()
    assert handle.cancelled() and handle.done()
    assert not handle.cancel()
    with pytest.raises(ca.GenerationCancelled, match="no cancel endpoint"):
        await handle
    assert handle not in client.pending
    assert handle.id is not None
    checks = manual_server.counters.status_checks_by_id[handle.id]
    await anyio.sleep(0.1)
    assert manual_server.counters.status_checks_by_id[handle.id] == checks


async def test_result_and_exception_of_a_pending_handle_raise_invalid_state(
    client: ca.Client, manual_server: FakeChuizi
) -> None:
    handle = await client.submit(VEO, "a cat")
    with pytest.raises(asyncio.InvalidStateError):
        handle.result()
    with pytest.raises(asyncio.InvalidStateError):
        handle.exception()


async def test_done_callbacks_run_once_on_resolution(client: ca.Client) -> None:
    handle = await client.submit(VEO, "a cat")
    seen: list[ca.Generation] = []
    handle.add_done_callback(seen.append)
    await handle
    handle.add_done_callback(seen.append)  # already done: called at once
    assert seen == [handle, handle]


# -- track and retrieve ------------------------------------------------------------------------


async def test_track_follows_an_id_submitted_elsewhere(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    async with make_client() as first:
        submitted = await first.submit(VEO, "made by another process")
        assert submitted.id is not None
        submitted.cancel()
    async with make_client() as second:
        handle = second.track(submitted.id, model=VEO)
        assert second.track(submitted.id) is handle
        video = await handle
    assert video.id == submitted.id
    assert server.counters.generations_created == 1


async def test_track_opens_the_client_and_needs_a_real_id(
    make_client: ClientFactory, server: FakeChuizi
) -> None:
    server.auto_complete = False
    submitted = await make_client().submit(VEO, "made elsewhere")
    assert submitted.id is not None
    client = make_client()
    handle = client.track(submitted.id)  # like any other use, opens the client
    assert "opened" in repr(client)
    server.complete(submitted.id)
    assert (await handle).id == submitted.id
    with pytest.raises(ca.InvalidRequest):
        client.track("  ")
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        client.track(submitted.id)


def test_track_outside_async_code_says_it_needs_a_loop() -> None:
    with pytest.raises(RuntimeError, match="running event loop"):
        ca.Client("ck-x").track("gen-0123456789abcdef")


@pytest.mark.parametrize(
    "place",
    [
        "output.video_url",
        "output.url",
        "video_url",
        "url",
        "data.video_url",
        "output.videos[0].url",
        "output[0].video_url",
        "videos[0].url",
        "videos[0].video_url",
        "data[0].url",
    ],
)
@pytest.mark.parametrize("dialect", ["guide", "reference"])
async def test_the_video_is_found_in_every_place_the_documents_use(
    make_client: ClientFactory, place: str, dialect: Literal["guide", "reference"]
) -> None:
    sim = FakeChuizi(speed=1000, seed=3, video_url_at=place, dialect=dialect)
    async with sim, make_client(sim=sim) as client:
        video = await client.generate(VEO, "a cat watching rain")
    assert video.url == f"{sim.media_base_url}/videos/{video.id}.mp4"


async def test_a_done_answer_with_the_video_elsewhere_fails_fast_and_shows_the_answer(
    make_client: ClientFactory,
) -> None:
    async with (
        FakeChuizi(speed=1000, seed=3, video_url_at="result.media.src", auto_complete=False) as sim,
        make_client(sim=sim) as client,
    ):
        handle = await client.submit(VEO, "a cat watching rain")
        assert handle.id is not None
        sim.complete(handle.id)
        with pytest.raises(ca.UnreadableVideo) as info:
            await handle
    error = info.value
    assert error.generation_id == handle.id
    assert '"result":{"media":{"src":"http' in str(error)
    assert error.excerpt in str(error)
    assert sim.api_key not in str(error)
    # read again twice in case the answer was torn, then final: not an hour of polling
    assert sim.counters.status_checks_by_id[handle.id] == 3


async def test_retrieve_makes_one_status_request(client: ca.Client, server: FakeChuizi) -> None:
    handle = await client.submit(VEO, "a cat")
    await handle
    assert handle.id is not None
    before = server.counters.status_checks
    status = await client.retrieve(handle.id)
    assert server.counters.status_checks == before + 1
    word = "succeeded" if server.dialect == "reference" else "completed"
    assert status.state == "completed" and status.status == word
    assert status.video is not None
    assert status.video.cost == (Decimal("0.15") if server.cost_in_status else None)


@pytest.mark.parametrize("dialect", ["guide", "reference"])
async def test_a_done_handles_status_is_the_answer_its_last_check_read(
    make_client: ClientFactory, dialect: Literal["guide", "reference"]
) -> None:
    sim = FakeChuizi(speed=1000, seed=3, dialect=dialect, wrap_data=dialect == "reference")
    async with sim, make_client(sim=sim) as client:
        handle = await client.submit(VEO, "a cat")
        video = await handle
        assert handle.id is not None
        again = await client.retrieve(handle.id)
    status = handle.status
    assert status is not None and status is handle.status  # built once, when first asked
    assert status == again  # the same answer as retrieve() reads (raw aside)
    assert status.status == ("succeeded" if dialect == "reference" else "completed")
    assert status.video is video and status.raw is video.raw
    assert status.raw == again.raw


async def test_retrieve_of_an_unknown_id_raises_not_found(client: ca.Client) -> None:
    with pytest.raises(ca.NotFoundError):
        await client.retrieve("gen-ffffffffffffffff")


async def test_tracking_an_unknown_id_fails_only_that_handle(client: ca.Client) -> None:
    ghost = client.track("gen-ffffffffffffffff")
    real = await client.submit(VEO, "a cat")
    with pytest.raises(ca.NotFoundError):
        await ghost
    assert (await real).id == real.id


# -- the poller --------------------------------------------------------------------------------


async def test_no_request_is_made_while_nothing_is_pending(
    client: ca.Client, server: FakeChuizi
) -> None:
    await client.generate(VEO, "a cat")
    before = server.counters.requests
    await anyio.sleep(0.2)
    assert server.counters.requests == before


async def test_give_up_after_resolves_with_generation_timeout(
    make_client: ClientFactory, manual_server: FakeChuizi
) -> None:
    async with make_client(poll=ca.PollPolicy(give_up_after=200.0)) as client:  # 0.2 s
        handle = await client.submit(VEO, "never finishes")
        with pytest.raises(ca.GenerationTimeout, match="gave up"):
            await handle.wait(timeout=5)
        assert client.pending == []


async def test_aclose_resolves_pending_handles_with_client_closed(
    make_client: ClientFactory, manual_server: FakeChuizi
) -> None:
    client = make_client()
    async with client:
        handles = [await client.submit(VEO, f"clip {i}") for i in range(3)]
    with anyio.fail_after(1):
        await client.aclose()  # again: a no-op
    for handle in handles:
        with pytest.raises(ca.ClientClosed) as info:
            await handle
        assert info.value.generation_id == handle.id
        assert handle.id is not None and handle.id in str(info.value)
    assert client.closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.submit(VEO, "after close")


async def test_debug_logs_never_contain_the_key(
    make_client: ClientFactory, server: FakeChuizi, caplog: pytest.LogCaptureFixture
) -> None:
    server.faults = Faults(server_error=0.3, bad_gateway_html=0.2, retry_after=0.01)
    caplog.set_level(logging.DEBUG, logger="chuizi_async")
    async with make_client(max_retries=10) as client:
        await client.generate_many(
            [{"model": VEO, "prompt": f"p{i}"} for i in range(10)], return_exceptions=True
        )
    assert caplog.records
    assert all(server.api_key not in r.getMessage() for r in caplog.records)
    assert any("->" in r.getMessage() for r in caplog.records)


async def test_a_base_url_without_v1_is_named_in_the_404(server: FakeChuizi) -> None:
    root = server.base_url.removesuffix("/v1")
    async with ca.Client(server.api_key, base_url=root, time_scale=SPEED) as client:
        with pytest.raises(ca.NotFoundError) as info:
            await client.generate(VEO, "a cat")
    message = str(info.value)
    assert f"{root}/videos/generations" in message
    assert "does base_url end in /v1" in message
    assert server.counters.generations_created == 0


async def test_a_404_that_is_not_the_apis_says_so() -> None:
    class NotTheApi(Loopback):
        async def handle(self, request: web.Request) -> web.StreamResponse:
            return web.Response(status=404, text="<h1>Not Found</h1>", content_type="text/html")

    async with NotTheApi() as other:
        base = f"{other.base_url}/v1"
        async with ca.Client("ck-" + "a" * 32, base_url=base, max_retries=0) as client:
            with pytest.raises(ca.NotFoundError, match="is base_url the API's") as info:
                await client.list_models()
    assert f"{base}/models" in str(info.value)
