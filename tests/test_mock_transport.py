"""MockTransport: a Client against a handler, no server and no network."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import chuizi_async as ca

API_KEY = "ck-" + "a" * 32
BASE_URL = "https://api.chuizi.ai/v1"
MEDIA = "https://media.chuizi.ai/videos"
FAST = 1000.0  # the client's time_scale: milliseconds where it would wait seconds


class FakeAPI:
    """The guide's API in a few lines: each generation answers ``processing`` to its first
    status check and ``completed`` to the next; ``submit_failures`` answers go first."""

    def __init__(self, *, submit_failures: list[ca.Response | Exception] | None = None) -> None:
        self.checks: dict[str, int] = {}
        self.submit_failures = list(submit_failures or [])

    def __call__(self, request: ca.Request) -> ca.Response:
        url = urlsplit(request.url)
        if request.method == "POST" and url.path == "/v1/videos/generations":
            if self.submit_failures:
                failure = self.submit_failures.pop(0)
                if isinstance(failure, Exception):
                    raise failure
                return failure
            assert request.content is not None
            gen_id = f"gen-{len(self.checks) + 1:016x}"
            self.checks[gen_id] = 0
            return ca.json_response({"id": gen_id, "status": "processing", "created": 1})
        if request.method == "GET" and url.path == "/v1/generation":
            gen_id = parse_qs(url.query)["id"][0]
            if gen_id not in self.checks:
                return ca.json_response({"error": {"message": "no such id"}}, status=404)
            self.checks[gen_id] += 1
            if self.checks[gen_id] == 1:
                return ca.json_response({"id": gen_id, "status": "processing"})
            return ca.json_response(
                {
                    "id": gen_id,
                    "status": "completed",
                    "output": {"video_url": f"{MEDIA}/{gen_id}.mp4"},
                    "x_chuizi": {"generation_id": gen_id, "cost": "0.15000000"},
                }
            )
        if request.method == "GET" and request.url.startswith(MEDIA):
            return ca.Response(status=200, headers={}, content=b"\x00\x00\x00\x18ftypmp42")
        return ca.json_response({"error": {"message": "no route"}}, status=404)


def client_of(transport: ca.Transport, **options: Any) -> ca.Client:
    return ca.Client(API_KEY, base_url=BASE_URL, time_scale=FAST, transport=transport, **options)


async def test_a_client_generates_against_a_handler() -> None:
    api = FakeAPI()
    transport = ca.MockTransport(api)
    async with client_of(transport) as client:
        video = await client.generate("google/veo-3.1-fast", "a cat", duration=5)
    assert video.url == f"{MEDIA}/{video.id}.mp4"
    assert api.checks == {video.id: 2}  # processing, then completed
    posts = [r for r in transport.requests if r.method == "POST"]
    assert len(posts) == 1
    assert posts[0].content is not None
    assert json.loads(posts[0].content)["prompt"] == "a cat"


async def test_the_pollers_checks_leave_their_timeout_to_its_watchdog() -> None:
    api = FakeAPI()
    transport = ca.MockTransport(api)
    async with client_of(transport, timeout=7.0) as client:
        video = await client.generate("google/veo-3.1-fast", "a cat")
        await client.retrieve(video.id)  # a status request of the user's own
    timeouts = [(r.method, r.timeout) for r in transport.requests]
    # the submission and the user's request: the client's timeout; the poller's two checks:
    # none of the transport's (no timer a check: its watchdog gives up on a stuck one sooner)
    assert timeouts == [("POST", 7.0), ("GET", math.inf), ("GET", math.inf), ("GET", 7.0)]


async def test_an_async_handler_is_awaited() -> None:
    api = FakeAPI()

    async def handler(request: ca.Request) -> ca.Response:
        return api(request)

    async with client_of(ca.MockTransport(handler)) as client:
        generation = await client.submit("google/veo-3.1-fast", "a cat")
        video = await generation.wait()
    assert video.id == generation.id


async def test_requests_carry_the_key_a_request_id_and_an_idempotency_key_on_post() -> None:
    transport = ca.MockTransport(FakeAPI())
    async with client_of(transport) as client:
        await client.generate("google/veo-3.1-fast", "a cat")
    post, *gets = transport.requests
    assert post.method == "POST" and gets and all(r.method == "GET" for r in gets)
    for request in transport.requests:
        assert request.headers["authorization"] == f"Bearer {API_KEY}"  # any case
        assert request.headers["X-Request-Id"]
    assert post.headers["Idempotency-Key"]
    assert all("Idempotency-Key" not in r.headers for r in gets)
    assert len({r.headers["X-Request-Id"] for r in transport.requests}) == len(transport.requests)


async def test_a_503_from_the_handler_is_retried_with_the_same_idempotency_key() -> None:
    unavailable = ca.json_response(
        {"error": {"message": "busy", "type": "service_unavailable"}},
        status=503,
        headers={"retry-after": "0"},
    )
    transport = ca.MockTransport(FakeAPI(submit_failures=[unavailable]))
    async with client_of(transport) as client:
        generation = await client.submit("google/veo-3.1-fast", "a cat")
    first, second = [r for r in transport.requests if r.method == "POST"]
    assert generation.id is not None and generation.id.startswith("gen-")
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    assert client.stats.retries == 1


async def test_an_error_answer_becomes_the_typed_error_with_the_request_id() -> None:
    answer = ca.json_response(
        {"error": {"message": "balance too low", "type": "insufficient_quota"}}, status=402
    )
    transport = ca.MockTransport(FakeAPI(submit_failures=[answer]))
    async with client_of(transport) as client:
        with pytest.raises(ca.InsufficientBalanceError, match="balance too low") as caught:
            await client.submit("google/veo-3.1-fast", "a cat")
    assert caught.value.request_id == transport.requests[0].headers["X-Request-Id"]


async def test_a_raised_connect_error_is_retried_then_reported() -> None:
    outage = ca.APIConnectError("could not connect (simulated)")
    transport = ca.MockTransport(FakeAPI(submit_failures=[outage]))
    async with client_of(transport, retry_submissions="safe") as client:
        generation = await client.submit("google/veo-3.1-fast", "a cat")
    assert generation.id is not None and generation.id.startswith("gen-")

    transport = ca.MockTransport(FakeAPI(submit_failures=[outage]))
    async with client_of(transport, max_retries=0) as client:
        with pytest.raises(ca.APIConnectError, match="simulated"):
            await client.submit("google/veo-3.1-fast", "a cat")


async def test_an_os_error_from_the_handler_is_mapped_as_the_real_transport_maps_it() -> None:
    reset = ConnectionResetError("connection reset by peer")
    transport = ca.MockTransport(FakeAPI(submit_failures=[reset]))
    async with client_of(transport, max_retries=0, retry_submissions="safe") as client:
        with pytest.raises(ca.SubmissionUncertain) as caught:
            await client.submit("google/veo-3.1-fast", "a cat")
    assert isinstance(caught.value.__cause__, ca.APIConnectionError)


async def test_download_writes_the_answer_to_the_file(tmp_path: Path) -> None:
    transport = ca.MockTransport(FakeAPI())
    async with client_of(transport) as client:
        video = await client.generate("google/veo-3.1-fast", "a cat")
        path = await client.download(video, tmp_path)
    assert path == tmp_path / f"{video.id}.mp4"
    assert path.read_bytes() == b"\x00\x00\x00\x18ftypmp42"
    media = transport.requests[-1]
    assert media.url == video.url and "Authorization" not in media.headers


async def test_a_download_that_is_not_found_raises_and_leaves_no_file(tmp_path: Path) -> None:
    async with client_of(ca.MockTransport(FakeAPI())) as client:
        with pytest.raises(ca.NotFoundError):
            await client.download("https://media.chuizi.ai/missing.mp4", tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_the_client_closes_its_transport() -> None:
    transport = ca.MockTransport(FakeAPI())
    async with client_of(transport) as client:
        await client.submit("google/veo-3.1-fast", "a cat")
        assert not transport.closed
    assert transport.closed


async def test_a_closed_mock_transport_opens_again_like_the_real_one() -> None:
    transport = ca.MockTransport(lambda request: ca.json_response({"object": "list", "data": []}))
    await transport.aclose()
    request = ca.Request(method="GET", url=f"{BASE_URL}/models")
    response = await transport.send(request)
    assert response.status == 200 and response.url == request.url
    assert not transport.closed


def test_json_response_is_json_with_case_insensitive_headers() -> None:
    response = ca.json_response({"id": "gen-1"}, status=201, headers={"X-Request-Id": "req-1"})
    assert response.status == 201
    assert json.loads(response.content) == {"id": "gen-1"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "req-1"
