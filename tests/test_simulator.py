"""Tests of the built-in API simulator, driven with a raw aiohttp client."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

import aiohttp
import attrs
import pytest

import chuizi_async.testing
from chuizi_async.testing import FakeChuizi, Faults, RateLimit
from chuizi_async.testing._ratelimit import ResetFormat, format_reset
from chuizi_async.testing._realism import HARSH

FAST = {"google/veo-3.1-fast": (30.0, 30.0)}  # 30 server seconds: 30 ms at speed=1000
JsonBody = Any


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(server: FakeChuizi) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}"}


async def call(
    session: aiohttp.ClientSession,
    server: FakeChuizi,
    method: str,
    path: str,
    *,
    json_body: JsonBody = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, JsonBody, Mapping[str, str]]:
    """Send an authenticated API request; return status, decoded JSON and headers."""
    all_headers = {**auth(server), **(headers or {})}
    async with session.request(
        method, server.base_url + path, json=json_body, headers=all_headers
    ) as response:
        text = await response.text()
        return response.status, json.loads(text) if text else None, response.headers


async def submit(
    session: aiohttp.ClientSession,
    server: FakeChuizi,
    headers: Mapping[str, str] | None = None,
    **body: Any,
) -> tuple[int, JsonBody]:
    payload = {"model": "google/veo-3.1-fast", "prompt": "a cat", **body}
    status, answer, _ = await call(
        session, server, "POST", "/videos/generations", json_body=payload, headers=headers
    )
    return status, answer


async def guide_status(
    session: aiohttp.ClientSession, server: FakeChuizi, generation_id: str
) -> tuple[int, JsonBody]:
    status, answer, _ = await call(session, server, "GET", f"/generation?id={generation_id}")
    return status, answer


async def reference_status(
    session: aiohttp.ClientSession, server: FakeChuizi, generation_id: str
) -> tuple[int, JsonBody]:
    status, answer, _ = await call(session, server, "GET", f"/videos/{generation_id}")
    return status, answer


async def wait_ready(server: FakeChuizi, generation_id: str) -> None:
    ready_at = server.ready_at(generation_id)
    assert ready_at is not None
    await asyncio.sleep(max(ready_at - time.monotonic(), 0.0) + 0.005)


# -- basics --------------------------------------------------------------------------------


def test_public_names_are_exported_sorted() -> None:
    public = {name for name in dir(chuizi_async.testing) if not name.startswith(("_", "@"))}
    assert chuizi_async.testing.__all__ == sorted(chuizi_async.testing.__all__)
    assert set(chuizi_async.testing.__all__) == public - {"annotations"}


async def test_server_urls_and_generated_key() -> None:
    async with FakeChuizi() as server:
        assert re.fullmatch(r"ck-[A-Za-z0-9]{32}", server.api_key)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", server.base_url)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.media_base_url)
        assert not server.base_url.startswith(server.media_base_url + "/")
    assert FakeChuizi(api_key="ck-given").api_key == "ck-given"
    assert "opened" in repr(server) or "closed" in repr(server)


def test_construction_knobs_are_checked_and_fixed() -> None:
    server = FakeChuizi()
    with pytest.raises(attrs.exceptions.FrozenAttributeError):
        server.speed = 2.0
    server.auto_complete = False  # runtime knobs stay settable
    with pytest.raises(ValueError, match="probability"):
        Faults(server_error=2.0)
    with pytest.raises(ValueError, match="speed"):
        FakeChuizi(speed=0)
    with pytest.raises(ValueError, match="unknown model"):
        FakeChuizi(completion_times={"acme/nope": (1.0, 2.0)})
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.base_url


async def test_missing_or_wrong_key_is_401_and_x_api_key_is_accepted(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi() as server:
        url = server.base_url + "/models"
        for headers in ({}, {"Authorization": "Bearer ck-wrong"}, {"x-api-key": "nope"}):
            async with session.get(url, headers=headers) as response:
                assert response.status == 401
                error = (await response.json())["error"]
                assert error["type"] == "authentication_error"
                assert error["code"] == "invalid_api_key"
        async with session.get(url, headers={"x-api-key": server.api_key}) as response:
            assert response.status == 200


async def test_unknown_generation_is_404_on_both_dialects(
    session: aiohttp.ClientSession,
) -> None:
    expected = {
        "error": {"message": "Generation not found", "type": "not_found", "code": "not_found"}
    }
    async with FakeChuizi() as server:
        assert await guide_status(session, server, "gen-0000") == (404, expected)
    async with FakeChuizi(dialect="reference") as server:
        assert await reference_status(session, server, "gen-0000") == (404, expected)


# -- submissions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        (["not", "an", "object"], 400, "invalid_request_error", "JSON object"),
        ({"model": "google/veo-3.1-fast"}, 400, "invalid_request_error", "prompt"),
        ({"model": "google/veo-3.1-fast", "prompt": "  "}, 400, "invalid_request_error", "prompt"),
        ({"prompt": "a cat"}, 400, "invalid_request_error", "model"),
        ({"model": "acme/nope", "prompt": "x"}, 404, "not_found", "acme/nope"),
        ({"model": "veo-3.1", "prompt": "x", "duration": "5"}, 400, "invalid_request_error", "int"),
        ({"model": "veo-3.1", "prompt": "x", "duration": 9}, 400, "invalid_request_error", "8"),
        ({"model": "veo-3.1", "prompt": "x", "duration": 0}, 400, "invalid_request_error", "1"),
        (
            {"model": "veo-3.1", "prompt": "x", "duration": True},
            400,
            "invalid_request_error",
            "int",
        ),
        ({"model": "wan2.6-i2v", "prompt": "x"}, 400, "invalid_request_error", "image"),
        (
            {"model": "happyhorse-1.0-r2v", "prompt": "x", "reference_image_urls": []},
            400,
            "invalid_request_error",
            "reference_image_urls",
        ),
        (
            {"model": "happyhorse-1.0-video-edit", "prompt": "x"},
            400,
            "invalid_request_error",
            "video_url",
        ),
        (
            {"model": "veo-3.1", "prompt": "x", "aspect_ratio": "wide"},
            400,
            "invalid_request_error",
            "aspect_ratio",
        ),
        (
            {"model": "veo-3.1", "prompt": "x", "watermark": "no"},
            400,
            "invalid_request_error",
            "watermark",
        ),
    ],
)
async def test_invalid_submissions_are_rejected_with_api_errors(
    session: aiohttp.ClientSession, body: JsonBody, status: int, kind: str, message: str
) -> None:
    async with FakeChuizi() as server:
        answer_status, answer, _ = await call(
            session, server, "POST", "/videos/generations", json_body=body
        )
        assert answer_status == status
        assert answer["error"]["type"] == kind
        assert message in answer["error"]["message"]
        assert answer["error"]["code"] == {400: "invalid_request", 404: "model_not_found"}[status]
        assert server.counters.generations_created == 0
        assert server.counters.submissions == 1


async def test_non_json_body_is_rejected(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi() as server:
        url = server.base_url + "/videos/generations"
        async with session.post(url, data=b"{oops", headers=auth(server)) as response:
            assert response.status == 400
            assert "JSON object" in (await response.json())["error"]["message"]


async def test_aliases_defaults_inputs_and_extra_models_are_accepted(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(extra_models={"qwen/wan2.7-t2v": 10}) as server:
        status, answer = await submit(session, server, model="veo-3.1-fast")
        assert status == 200
        generation = server.generations[answer["id"]]
        assert (generation.model, generation.duration) == ("google/veo-3.1-fast", 5)
        assert (await submit(session, server, model="bedrock/nova-reel-1.1"))[0] == 200
        accepted: list[dict[str, Any]] = [
            {"model": "wan2.6-i2v", "image": "data:image/png;base64,AAAA"},
            {"model": "bailian/happyhorse-1.0-i2v", "image_url": "https://x/y.png"},
            {"model": "happyhorse-1.0-r2v", "reference_image_urls": ["https://x/y.png"]},
            {"model": "happyhorse-1.0-video-edit", "video_url": "https://x/y.mp4"},
            {"model": "happyhorse-1.0-t2v", "duration": 15, "aspect_ratio": "9:16"},
            {"model": "happyhorse-1.0-t2v", "aspect_ratio": "4:3", "watermark": True},
            {"model": "qwen/wan2.7-t2v", "duration": 10},
        ]
        for body in accepted:
            assert (await submit(session, server, **body))[0] == 200, body
        durations = sorted(g.duration for g in server.generations.values())
        assert durations == [5, 5, 5, 5, 5, 5, 5, 10, 15]  # nova: min(5, 6); others default 5


async def test_allowed_models_forbid_other_models_with_403(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(allowed_models={"veo-3.1-fast"}) as server:
        status, answer = await submit(session, server, model="google/veo-3.1")
        assert status == 403
        assert answer["error"]["type"] == "permission_error"
        assert answer["error"]["code"] == "model_not_allowed"
        assert (await submit(session, server))[0] == 200
        _, models, _ = await call(session, server, "GET", "/models")
        assert [model["id"] for model in models["data"]] == ["google/veo-3.1-fast"]


# -- dialects ------------------------------------------------------------------------------


async def test_guide_dialect_ids_routes_and_completed_body(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(speed=1000, completion_times=FAST) as server:
        status, answer = await submit(session, server, duration=5)
        assert status == 200
        generation_id = answer["id"]
        assert re.fullmatch(r"gen-[0-9a-f]{16}", generation_id)
        assert answer == {"id": generation_id, "status": "processing", "created": answer["created"]}
        assert await guide_status(session, server, generation_id) == (200, answer)
        status, missing = await reference_status(session, server, generation_id)
        assert (status, missing["error"]["type"]) == (404, "not_found")
        await wait_ready(server, generation_id)
        assert await guide_status(session, server, generation_id) == (
            200,
            {
                "id": generation_id,
                "status": "completed",
                "created": answer["created"],
                "model": "google/veo-3.1-fast",
                "output": {"video_url": f"{server.media_base_url}/videos/{generation_id}.mp4"},
                "usage": {"duration_seconds": 5},
                "x_chuizi": {
                    "generation_id": generation_id,
                    "cost": "0.15000000",
                    "latency_ms": 30000,
                },
            },
        )


async def test_completion_time_is_compressed_by_speed() -> None:
    async with FakeChuizi(speed=200, completion_times={"veo-3.1": (40.0, 60.0)}) as server:
        async with aiohttp.ClientSession() as session:
            _, answer = await submit(session, server, model="veo-3.1")
        generation = server.generations[answer["id"]]
        assert 40.0 <= generation.processing_time <= 60.0
        assert generation.ready_at == pytest.approx(
            generation.submitted_at + generation.processing_time / 200
        )
        assert generation.status == "processing"
        await wait_ready(server, generation.id)
        assert server.generations[generation.id].status == "completed"
        assert generation.latency_ms == int(generation.processing_time * 1000)


async def test_reference_dialect_ids_statuses_and_billing_record(
    session: aiohttp.ClientSession,
) -> None:
    times = {"veo-3.1-fast": (1.0, 1.0)}  # queued for the first 0.2 s at speed=1
    async with FakeChuizi(
        dialect="reference", auto_complete=False, completion_times=times
    ) as server:
        status, answer = await submit(session, server)
        generation_id = answer["id"]
        assert re.fullmatch(r"gen-[a-z0-9]{24}", generation_id)
        assert answer["model"] == "google/veo-3.1-fast"
        assert answer["task_id"]
        assert answer["x_chuizi"] == {"generation_id": generation_id}
        assert (await reference_status(session, server, generation_id))[1]["status"] == "queued"
        await asyncio.sleep(0.25)
        assert (await reference_status(session, server, generation_id))[1]["status"] == "processing"
        status, billing = await guide_status(session, server, generation_id)
        assert status == 200
        assert set(billing["data"]) == {"id", "model", "cost", "latency_ms", "created_at"}
        assert "status" not in billing and "status" not in billing["data"]
        server.complete(generation_id)
        status, done = await reference_status(session, server, generation_id)
        assert done["status"] == "succeeded"
        assert done["output"]["video_url"].endswith(f"/videos/{generation_id}.mp4")
        assert done["x_chuizi"]["cost"] == "0.15000000"
        assert (await guide_status(session, server, generation_id))[1]["data"]["latency_ms"] >= 0


async def test_reference_dialect_can_answer_404_on_the_guide_route(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(dialect="reference", guide_route_on_reference="404") as server:
        _, answer = await submit(session, server)
        status, error = await guide_status(session, server, answer["id"])
        assert (status, error["error"]["type"]) == (404, "not_found")


async def test_cost_in_status_false_leaves_the_cost_to_the_billing_record(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(dialect="reference", auto_complete=False, cost_in_status=False) as server:
        _, answer = await submit(session, server, duration=5)
        server.complete(answer["id"])
        _, done = await reference_status(session, server, answer["id"])
        assert done["status"] == "succeeded" and "cost" not in done["x_chuizi"]
        _, billing = await guide_status(session, server, answer["id"])
        assert billing["data"]["cost"] == "0.15000000"


async def test_billing_after_completion_answers_404_until_the_generation_is_done(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(
        dialect="reference", auto_complete=False, billing_after_completion=True
    ) as server:
        _, answer = await submit(session, server)
        status, error = await guide_status(session, server, answer["id"])
        assert (status, error["error"]["type"]) == (404, "not_found")
        assert (await reference_status(session, server, answer["id"]))[0] == 200
        server.complete(answer["id"])
        status, billing = await guide_status(session, server, answer["id"])
        assert status == 200 and billing["data"]["id"] == answer["id"]


@pytest.mark.parametrize("dialect", ["guide", "reference"])
async def test_not_found_grace_answers_404_on_both_routes_for_a_fresh_id(
    session: aiohttp.ClientSession, dialect: str
) -> None:
    async with FakeChuizi(dialect=dialect, not_found_grace=0.2) as server:  # type: ignore[arg-type]
        _, answer = await submit(session, server)
        generation_id = answer["id"]
        assert (await guide_status(session, server, generation_id))[0] == 404
        assert (await reference_status(session, server, generation_id))[0] == 404
        await asyncio.sleep(0.25)
        route = guide_status if dialect == "guide" else reference_status
        assert (await route(session, server, generation_id))[0] == 200


async def test_daily_limit_answers_403_daily_limit_exceeded_past_the_days_spend(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(daily_limit=Decimal("0.30")) as server:
        assert (await submit(session, server, duration=5))[0] == 200
        assert (await submit(session, server, duration=5))[0] == 200
        status, answer = await submit(session, server, duration=1)
        assert status == 403
        assert answer["error"]["type"] == "permission_error"
        assert answer["error"]["code"] == "daily_limit_exceeded"
        server.daily_limit = Decimal("0.33")
        assert (await submit(session, server, duration=1))[0] == 200


async def test_wrap_data_and_top_level_video_url(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(
        speed=1000, completion_times=FAST, wrap_data=True, top_level_video_url=True
    ) as server:
        _, answer = await submit(session, server)
        server.complete(answer["id"])
        _, wrapped = await guide_status(session, server, answer["id"])
        assert wrapped["data"]["status"] == "completed"
        assert wrapped["data"]["video_url"].endswith(".mp4")
        assert "output" not in wrapped["data"]


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("url", lambda body: body["url"]),
        ("output.videos[0].url", lambda body: body["output"]["videos"][0]["url"]),
        ("data[0].url", lambda body: body["data"][0]["url"]),
        ("videos[0]", lambda body: body["videos"][0]),
        ("result.media.src", lambda body: body["result"]["media"]["src"]),
    ],
)
async def test_video_url_at_puts_the_url_where_asked(
    session: aiohttp.ClientSession, path: str, where: Any
) -> None:
    async with FakeChuizi(speed=1000, completion_times=FAST, video_url_at=path) as server:
        _, answer = await submit(session, server)
        server.complete(answer["id"])
        _, body = await guide_status(session, server, answer["id"])
        assert body["status"] == "completed"
        assert where(body) == f"{server.media_base_url}/videos/{answer['id']}.mp4"
        assert "output" not in body or path.startswith("output")


@pytest.mark.parametrize("path", ["", "output.", "a..b", "a[1]", "a b", 3])
def test_video_url_at_must_be_a_dotted_path(path: Any) -> None:
    with pytest.raises(ValueError, match="video_url_at"):
        FakeChuizi(video_url_at=path)
    server = FakeChuizi()
    with pytest.raises(ValueError, match="video_url_at"):
        server.video_url_at = path


async def test_the_request_id_is_echoed_or_made_up(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi() as server:
        _, _, headers = await call(
            session, server, "GET", "/models", headers={"X-Request-Id": "req_mine"}
        )
        assert headers["X-Request-Id"] == "req_mine"
        status, _, headers = await call(session, server, "GET", "/videos/gen-none")
        assert status == 404
        assert re.fullmatch(r"req_[0-9a-f]{16}", headers["X-Request-Id"])
        server.echo_request_id = False
        _, _, headers = await call(
            session, server, "GET", "/models", headers={"X-Request-Id": "req_mine"}
        )
        assert "X-Request-Id" not in headers


# -- outcomes ------------------------------------------------------------------------------


async def test_fail_pattern_fails_at_completion_time(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(
        speed=1000, completion_times=FAST, fail_pattern=r"(?i)forbidden"
    ) as server:
        _, bad = await submit(session, server, prompt="something FORBIDDEN")
        _, good = await submit(session, server, prompt="a cat")
        assert (await guide_status(session, server, bad["id"]))[1]["status"] == "processing"
        await wait_ready(server, bad["id"])
        assert await guide_status(session, server, bad["id"]) == (
            200,
            {
                "id": bad["id"],
                "status": "failed",
                "created": bad["created"],
                "error": {"message": "Content policy violation", "type": "invalid_request_error"},
            },
        )
        assert (await guide_status(session, server, good["id"]))[1]["status"] == "completed"


async def test_failure_rate_fails_with_upstream_error(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(speed=1000, completion_times=FAST, failure_rate=1.0, seed=1) as server:
        _, answer = await submit(session, server)
        await wait_ready(server, answer["id"])
        _, failed = await guide_status(session, server, answer["id"])
        error = {"message": "Upstream generation failed", "type": "upstream_error"}
        assert (failed["status"], failed["error"]) == ("failed", error)


async def test_manual_completion_with_auto_complete_off(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(speed=1000, completion_times=FAST, auto_complete=False) as server:
        _, first = await submit(session, server)
        _, second = await submit(session, server)
        assert server.ready_at(first["id"]) is None
        await asyncio.sleep(0.05)
        assert (await guide_status(session, server, first["id"]))[1]["status"] == "processing"
        server.fail(first["id"], message="Nope", type="upstream_error")
        server.complete(first["id"])  # already finished: no-op
        server.complete(second["id"])
        assert server.ready_at(second["id"]) is not None
        _, failed = await guide_status(session, server, first["id"])
        assert failed["error"] == {"message": "Nope", "type": "upstream_error"}
        assert (await guide_status(session, server, second["id"]))[1]["status"] == "completed"
        with pytest.raises(KeyError):
            server.complete("gen-unknown")


# -- idempotency and balance ---------------------------------------------------------------


async def test_idempotency_key_replays_same_generation(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(balance=Decimal("1")) as server:
        headers = {"Idempotency-Key": "abc-123"}
        first = await submit(session, server, headers=headers)
        second = await submit(session, server, headers=headers)
        assert first == second
        assert server.counters.generations_created == 1
        assert server.counters.idempotent_replays == 1
        assert server.counters.submissions == 2
        assert server.balance == Decimal("0.85")
        assert server.generations[first[1]["id"]].idempotency_key == "abc-123"


async def test_idempotency_can_be_ignored(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(honour_idempotency=False) as server:
        headers = {"Idempotency-Key": "abc-123"}
        first = await submit(session, server, headers=headers)
        second = await submit(session, server, headers=headers)
        assert first[1]["id"] != second[1]["id"]
        assert server.counters.generations_created == 2


async def test_insufficient_balance_is_402_until_topped_up(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(balance=Decimal("0.20")) as server:
        assert (await submit(session, server))[0] == 200
        assert server.balance == Decimal("0.05")
        status, answer = await submit(session, server)
        assert status == 402
        assert answer["error"]["type"] == "insufficient_quota"
        assert answer["error"]["code"] == "insufficient_quota"
        assert answer["error"]["message"].startswith("Insufficient balance: ")
        assert server.counters.payment_required == 1
        assert server.counters.generations_created == 1
        server.balance = Decimal("10")
        assert (await submit(session, server))[0] == 200


async def test_daily_limit_is_403_once_the_days_spend_would_pass_it(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(daily_limit="0.40") as server:  # $0.15 a clip: two fit
        assert [(await submit(session, server))[0] for _ in range(2)] == [200, 200]
        status, answer = await submit(session, server)
        assert status == 403
        assert answer["error"]["type"] == "permission_error"
        assert answer["error"]["code"] == "daily_limit_exceeded"
        assert "0.30000000" in answer["error"]["message"]
        assert server.counters.generations_created == 2
        _, info, _ = await call(session, server, "GET", "/key/info")
        assert info["data"]["daily_limit"] == "0.40000000"
        server.daily_limit = Decimal("1")  # raised by the account owner
        assert (await submit(session, server))[0] == 200


async def test_failed_generations_are_refunded(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(balance=Decimal("1"), auto_complete=False) as server:
        _, answer = await submit(session, server)
        assert server.balance == Decimal("0.85")
        server.fail(answer["id"])
        assert server.balance == Decimal("1")
        assert server.generations[answer["id"]].charged == 0


# -- rate limits ---------------------------------------------------------------------------


async def test_sliding_window_rate_limit_with_delta_headers(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(rate_limit=RateLimit(limit=3, window=0.3)) as server:
        remaining = []
        for _ in range(3):
            await asyncio.sleep(0.08)  # spaced out: the window frees one slot at a time
            status, _, headers = await call(session, server, "GET", "/models")
            assert status == 200
            assert headers["X-RateLimit-Limit"] == "3"
            assert 0 < float(headers["X-RateLimit-Reset"]) <= 0.3
            remaining.append(headers["X-RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]
        status, answer, headers = await call(session, server, "GET", "/key/info")
        assert status == 429
        assert answer["error"]["type"] == "rate_limit_error"
        assert headers["X-RateLimit-Remaining"] == "0"
        retry_after = float(headers["Retry-After"])
        assert 0 <= retry_after <= 0.3
        status, _, headers = await call(session, server, "GET", "/models")
        assert status == 429  # rejected requests do not count, but the window is still full
        await asyncio.sleep(retry_after + 0.01)
        status, _, headers = await call(session, server, "GET", "/models")
        assert (status, headers["X-RateLimit-Remaining"]) == (200, "0")
        assert server.counters.rate_limited == 2


async def test_rate_limit_epoch_reset_format(session: aiohttp.ClientSession) -> None:
    limit = RateLimit(limit=5, window=10.0, reset_format="epoch")
    async with FakeChuizi(rate_limit=limit) as server:
        _, _, headers = await call(session, server, "GET", "/models")
        assert float(headers["X-RateLimit-Reset"]) == pytest.approx(time.time() + 10.0, abs=1.0)


@pytest.mark.parametrize(
    ("seconds", "reset_format", "written"),
    [
        (0.25, "delta", "0.25"),
        (90.0, "delta", "90"),
        (12.25, "epoch", "1800000012.250"),
        (12.25, "epoch_ms", "1800000012250"),
        (0.25, "duration", "250ms"),
        (1.5, "duration", "1.5s"),
        (90.0, "duration", "1m30s"),
        (360.0, "duration", "6m0s"),
        (11.2, "http_date", "Fri, 15 Jan 2027 08:00:12 GMT"),  # whole seconds, rounded up
        (12.0, "absent", None),
    ],
)
def test_rate_limit_reset_is_written_as_gateways_write_it(
    seconds: float, reset_format: ResetFormat, written: str | None
) -> None:
    assert format_reset(seconds, reset_format, wall_now=1_800_000_000.0) == written


async def test_rate_limit_with_an_absent_reset_sends_limit_and_remaining_only(
    session: aiohttp.ClientSession,
) -> None:
    limit = RateLimit(limit=5, window=10.0, reset_format="absent")
    async with FakeChuizi(rate_limit=limit) as server:
        _, _, headers = await call(session, server, "GET", "/models")
        assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("5", "4")
        assert "X-RateLimit-Reset" not in headers


async def test_rate_limit_without_headers_or_retry_after(session: aiohttp.ClientSession) -> None:
    limit = RateLimit(limit=1, window=10.0, headers=False, retry_after=False)
    async with FakeChuizi(rate_limit=limit) as server:
        _, _, headers = await call(session, server, "GET", "/models")
        assert "X-RateLimit-Limit" not in headers
        status, _, headers = await call(session, server, "GET", "/models")
        assert status == 429
        assert "Retry-After" not in headers
        assert "X-RateLimit-Remaining" not in headers


async def test_per_model_limit_applies_to_submissions(session: aiohttp.ClientSession) -> None:
    limit = RateLimit(limit=100, window=10.0, per_model=2)
    async with FakeChuizi(rate_limit=limit) as server:
        assert (await submit(session, server))[0] == 200
        assert (await submit(session, server, model="veo-3.1-fast"))[0] == 200
        status, answer, headers = await call(
            session,
            server,
            "POST",
            "/videos/generations",
            json_body={"model": "google/veo-3.1-fast", "prompt": "a cat"},
        )
        assert (status, answer["error"]["type"]) == (429, "rate_limit_error")
        assert headers["X-RateLimit-Limit"] == "2"
        assert float(headers["Retry-After"]) > 0
        assert (await submit(session, server, model="google/veo-3.1"))[0] == 200
        _, _, headers = await call(session, server, "GET", "/models")
        assert headers["X-RateLimit-Remaining"] == str(100 - 4)  # the 429 did not count


# -- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "status", "content_type"),
    [
        (Faults(rate_limited=1.0), 429, "application/json"),
        (Faults(server_error=1.0), 500, "application/json"),
        (Faults(bad_gateway_html=1.0), 502, "text/html"),
        (Faults(truncated_json=1.0), 200, "application/json"),
    ],
)
async def test_answer_faults(
    session: aiohttp.ClientSession, faults: Faults, status: int, content_type: str
) -> None:
    async with FakeChuizi(faults=faults) as server:
        async with session.get(server.base_url + "/models", headers=auth(server)) as response:
            assert response.status == status
            assert response.content_type == content_type
            text = await response.text()
        if status == 429:
            assert response.headers["Retry-After"] == "1"
        if status == 200:
            with pytest.raises(json.JSONDecodeError):
                json.loads(text)
            assert len(text) > 10
        server.faults = None
        assert (await call(session, server, "GET", "/models"))[0] == 200
        assert sum(server.counters.faults.values()) == 1


async def test_rate_limited_fault_can_omit_retry_after(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(faults=Faults(rate_limited=1.0, retry_after=None)) as server:
        status, answer, headers = await call(session, server, "GET", "/models")
        assert (status, answer["error"]["type"]) == (429, "rate_limit_error")
        assert "Retry-After" not in headers
        assert server.counters.faults == {"rate_limited": 1}
        assert server.counters.rate_limited == 1


async def test_connection_reset_fault_drops_the_connection(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(faults=Faults(connection_reset=1.0)) as server:
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await submit(session, server)
        assert server.counters.faults["connection_reset"] >= 1
        assert server.counters.generations_created == 0


async def test_drop_after_create_charges_without_answering(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(faults=Faults(drop_after_create=1.0), balance=Decimal("1")) as server:
        assert (await call(session, server, "GET", "/models"))[0] == 200  # submissions only
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await submit(session, server)
        assert server.counters.generations_created == 1
        assert server.balance == Decimal("0.85")
        assert server.counters.faults == {"drop_after_create": 1}


async def test_slow_fault_delays_the_answer(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(faults=Faults(slow=1.0, slow_seconds=0.1)) as server:
        started = time.monotonic()
        assert (await call(session, server, "GET", "/models"))[0] == 200
        assert time.monotonic() - started >= 0.1
        assert server.counters.faults == {"slow": 1}


async def test_faults_are_drawn_from_the_seeded_rng(session: aiohttp.ClientSession) -> None:
    outcomes = []
    for _ in range(2):
        async with FakeChuizi(faults=Faults(server_error=0.5), seed=7) as server:
            outcomes.append([(await call(session, server, "GET", "/models"))[0] for _ in range(12)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {200, 500}


# -- media ---------------------------------------------------------------------------------


async def test_media_server_serves_videos_and_records_credentials(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(speed=1000, completion_times=FAST) as server:
        _, answer = await submit(session, server)
        generation_id = answer["id"]
        url = f"{server.media_base_url}/videos/{generation_id}.mp4"
        async with session.get(url) as response:
            assert response.status == 404  # not ready yet
        server.complete(generation_id)
        _, done = await guide_status(session, server, generation_id)
        assert done["output"]["video_url"] == url
        async with session.get(url) as response:
            assert response.status == 200
            assert response.content_type == "video/mp4"
            data = await response.read()
            assert response.content_length == len(data)
        assert data[4:8] == b"ftyp"
        assert 1024 < len(data) < 16384
        async with session.get(url, headers=auth(server)) as response:
            assert await response.read() == data
        async with session.get(f"{server.media_base_url}/videos/gen-nope.mp4") as response:
            assert response.status == 404
        assert server.counters.media_requests == 4
        assert server.counters.media_requests_with_auth == 1
        assert [record.has_credentials for record in server.media_log] == [
            False,
            False,
            True,
            False,
        ]


# -- other endpoints -----------------------------------------------------------------------


async def test_models_endpoint_lists_the_catalogue(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi() as server:
        _, answer, _ = await call(session, server, "GET", "/models")
        assert answer["object"] == "list"
        models = {model["id"]: model for model in answer["data"]}
        assert len(models) == 12
        fast = models["google/veo-3.1-fast"]
        assert fast["object"] == "model"
        assert fast["owned_by"] == "google"
        assert fast["aliases"] == ["veo-3.1-fast"]
        assert fast["pricing"] == {"unit": "second", "per_second": "0.03"}
        assert isinstance(fast["created"], int)


async def test_key_info_data_shape(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(
        balance=Decimal("42.5"), rate_limit=RateLimit(limit=500), allowed_models={"veo-3.1"}
    ) as server:
        _, answer, _ = await call(session, server, "GET", "/key/info")
        data = answer["data"]
        assert data["balance"] == "42.50000000"
        assert data["rpm_limit"] == 500
        assert data["allowed_models"] == ["google/veo-3.1"]
        assert data["is_active"] is True
        assert server.api_key.startswith(data["key_prefix"])
        assert {"name", "daily_limit"} <= set(data)


async def test_key_info_legacy_shape_and_unlimited_balance(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(key_info_shape="legacy") as server:
        await submit(session, server)
        _, answer, _ = await call(session, server, "GET", "/key/info")
        assert answer["object"] == "key_info"
        assert answer["currency"] == "USD"
        assert Decimal(answer["balance"]) >= 1000
        assert answer["rate_limit"] == {"rpm": None, "daily": None}
        assert answer["usage_today"]["cost"] == "0.15000000"


async def test_unknown_route_is_json_404(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi() as server:
        status, answer, _ = await call(session, server, "GET", "/nowhere")
        assert (status, answer["error"]["type"]) == (404, "not_found")


# -- restart, counters, log ----------------------------------------------------------------


async def test_stop_and_start_listening_keep_port_and_state(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeChuizi(speed=1000, completion_times=FAST) as server:
        _, answer = await submit(session, server)
        base_url = server.base_url
        await server.stop_listening()
        with pytest.raises(aiohttp.ClientConnectionError):
            await guide_status(session, server, answer["id"])
        await asyncio.sleep(0.05)  # the generation keeps progressing meanwhile
        await server.start_listening()
        assert server.base_url == base_url
        assert (await guide_status(session, server, answer["id"]))[1]["status"] == "completed"


async def test_counters_and_request_log(session: aiohttp.ClientSession) -> None:
    async with FakeChuizi(auto_complete=False) as server:
        _, answer = await submit(session, server)
        generation_id = answer["id"]
        await guide_status(session, server, generation_id)
        await guide_status(session, server, generation_id)
        await reference_status(session, server, generation_id)
        await call(session, server, "GET", "/models")
        counters = server.counters
        assert counters.requests == 5
        assert counters.submissions == 1
        assert counters.status_checks == 3
        assert counters.status_checks_by_id == {generation_id: 3}
        assert counters.generations_created == 1
        first = server.requests_log[0]
        assert (first.method, first.path) == ("POST", "/v1/videos/generations")
        assert first.json == {"model": "google/veo-3.1-fast", "prompt": "a cat"}
        assert first.header("authorization") == f"Bearer {server.api_key}"
        assert server.requests_log[1].query == {"id": generation_id}
        assert [r.time for r in server.requests_log] == sorted(r.time for r in server.requests_log)
        generation = server.generations[generation_id]
        assert (generation.prompt, generation.cost) == ("a cat", Decimal("0.15"))


# -- pytest plugin -------------------------------------------------------------------------


async def test_chuizi_server_fixture_yields_a_started_server(
    chuizi_server: FakeChuizi, session: aiohttp.ClientSession
) -> None:
    assert chuizi_server.speed == 1000
    assert (await call(session, chuizi_server, "GET", "/models"))[0] == 200


@pytest.mark.parametrize("chuizi_server", [{"dialect": "reference"}], indirect=True)
async def test_chuizi_server_fixture_takes_indirect_parameters(
    chuizi_server: FakeChuizi,
) -> None:
    assert chuizi_server.dialect == "reference"
    assert chuizi_server.speed == 1000


def test_plugin_defines_nothing_without_pytest_asyncio() -> None:
    code = (
        "import sys; sys.modules['pytest_asyncio'] = None\n"
        "import chuizi_async.testing._plugin as plugin\n"
        "assert not hasattr(plugin, 'chuizi_server')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


async def test_closing_with_a_slow_request_in_flight_is_clean(
    session: aiohttp.ClientSession,
) -> None:
    server = FakeChuizi(faults=Faults(slow=1.0, slow_seconds=30.0))
    await server.start()
    timeout = aiohttp.ClientTimeout(total=0.05)
    with pytest.raises(asyncio.TimeoutError):
        await session.get(server.base_url + "/models", headers=auth(server), timeout=timeout)
    started = time.monotonic()
    await server.aclose()
    assert time.monotonic() - started < 1.0
    await server.aclose()  # idempotent
    with pytest.raises(RuntimeError):
        await server.start()


def test_the_harsh_preset_turns_on_every_unkind_choice() -> None:
    harsh = FakeChuizi(realism="harsh")
    for name, value in HARSH.items():
        assert getattr(harsh, name) == value, name
    kind = FakeChuizi()
    assert all(getattr(kind, name) != value for name, value in HARSH.items())


def test_the_harsh_preset_keeps_a_knob_given_another_value() -> None:
    server = FakeChuizi(realism="harsh", not_found_grace=1.0, video_url_at="url")
    assert server.not_found_grace == 1.0 and server.video_url_at == "url"
    assert server.dialect == "reference"
    with pytest.raises(ValueError, match="realism"):
        FakeChuizi(realism="gentle")  # type: ignore[arg-type]


def test_the_harsh_preset_writes_a_rate_limits_reset_in_epoch_milliseconds() -> None:
    server = FakeChuizi(realism="harsh", rate_limit=RateLimit(limit=10))
    assert server.rate_limit is not None and server.rate_limit.reset_format == "epoch_ms"
    chosen = FakeChuizi(realism="harsh", rate_limit=RateLimit(limit=10, reset_format="absent"))
    assert chosen.rate_limit is not None and chosen.rate_limit.reset_format == "absent"
