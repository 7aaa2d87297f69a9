"""What ``FakeChuizi`` answers, request by request: its routes, the checks on the way, faults.

The knobs are read from the server at each request (many may change at runtime). The ledger
of generations (and its random source) is shared with the server; the catalogue, the rate
limiter and the idempotent replies belong to the routes.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web

from ._catalogue import Catalogue, Submission, validate_submission
from ._errors import ApiError, error_response
from ._faults import BAD_GATEWAY_HTML, FaultKind, Faults, pick_fault
from ._ledger import Ledger
from ._media import fake_mp4
from ._ratelimit import RateLimiter, format_seconds
from ._records import RecordedRequest, SimGeneration
from ._render import (
    StatusOptions,
    billing_body,
    format_money,
    key_info_body,
    model_list_body,
    status_body,
    submit_body,
)

if TYPE_CHECKING:
    from ._server import FakeChuizi

__all__ = ["Routes"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_UNLIMITED_BALANCE = Decimal("1000000")


@attrs.define(eq=False)
class Routes:
    """The API's and the media host's routes of one ``FakeChuizi``, and what they keep."""

    server: FakeChuizi
    ledger: Ledger
    rng: random.Random
    catalogue: Catalogue
    allowed: frozenset[str] | None
    fail_re: re.Pattern[str] | None
    limiter: RateLimiter | None
    replies: dict[tuple[str, str], dict[str, Any]] = attrs.field(factory=dict)

    # -- applications ---------------------------------------------------------------------

    def api_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v1/videos/generations", self._handle_submit, name="submit")
        app.router.add_get("/v1/generation", self._handle_generation, name="generation")
        app.router.add_get("/v1/videos/{id}", self._handle_video, name="video")
        app.router.add_get("/v1/models", self._handle_models, name="models")
        app.router.add_get("/v1/key/info", self._handle_key_info, name="key_info")
        return app

    def media_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/videos/{name}", self._handle_media)
        return app

    # -- request path ---------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        now = time.monotonic()
        body = _read_json(await request.read()) if request.can_read_body else None
        self._count_request(request)
        self.server.requests_log.append(_record(request, body, now))
        self.ledger.settle(now)
        headers: dict[str, str] = {}
        try:
            key = self._authenticate(request)
            headers = self._admit(request, key, body, now)
            response = await self._dispatch(request, handler)
        except ApiError as exc:
            headers = exc.headers or headers
            response = exc.to_response()
        except web.HTTPException as exc:
            kind = "not_found" if exc.status == 404 else "invalid_request_error"
            response = error_response(exc.status, exc.reason, kind)
        response.headers.update(headers)
        if self.server.echo_request_id:
            sent = request.headers.get("X-Request-Id")
            response.headers["X-Request-Id"] = sent or f"req_{os.urandom(8).hex()}"
        self._count_answer(response.status)
        return response

    def _count_request(self, request: web.Request) -> None:
        self.server.counters.requests += 1
        route = _route_name(request)
        if route == "submit":
            self.server.counters.submissions += 1
        elif route in ("generation", "video"):
            generation_id = request.match_info.get("id") or request.query.get("id", "")
            self.server.counters.status_checks += 1
            self.server.counters.status_checks_by_id[generation_id] += 1

    def _count_answer(self, status: int) -> None:
        if status == 429:
            self.server.counters.rate_limited += 1
        elif status == 402:
            self.server.counters.payment_required += 1

    def _authenticate(self, request: web.Request) -> str:
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-key")
        if not key:
            raise ApiError(401, "Missing API key", "authentication_error", code="invalid_api_key")
        if key != self.server.api_key:
            raise ApiError(401, "Invalid API key", "authentication_error", code="invalid_api_key")
        return key

    def _admit(self, request: web.Request, key: str, body: Any, now: float) -> dict[str, str]:
        if self.limiter is None:
            return {}
        model = None
        if _route_name(request) == "submit" and isinstance(body, dict):
            name = body.get("model")
            found = self.catalogue.resolve(name) if isinstance(name, str) else None
            model = found.id if found else None
        return self.limiter.admit(key, model, now)

    async def _dispatch(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        faults = self.server.faults
        submission = _route_name(request) == "submit"
        number = self.server.counters.submissions  # counted on arrival, with no await since
        fault = pick_fault(faults, self.rng, submission=submission, number=number)
        if fault is None or faults is None:
            return await handler(request)
        self.server.counters.faults[fault] += 1
        return await self._inject(fault, faults, request, handler)

    async def _inject(
        self, fault: FaultKind, faults: Faults, request: web.Request, handler: _Handler
    ) -> web.StreamResponse:
        if fault == "rate_limited":
            headers = {}
            if faults.retry_after is not None:
                headers["Retry-After"] = format_seconds(faults.retry_after)
            raise ApiError(
                429,
                "Rate limit exceeded",
                "rate_limit_error",
                code="rate_limit_exceeded",
                headers=headers,
            )
        if fault == "server_error":
            raise ApiError(500, "Internal server error", "server_error", code="internal_error")
        if fault == "bad_gateway_html":
            return web.Response(status=502, text=BAD_GATEWAY_HTML, content_type="text/html")
        if fault == "connection_reset":
            return _reset_connection(request)
        if fault == "slow":
            await asyncio.sleep(faults.slow_seconds)
            return await handler(request)
        response = await handler(request)
        if fault == "truncated_json":
            return _truncate(response)
        return _reset_connection(request)  # drop_after_create

    # -- handlers -------------------------------------------------------------------------

    async def _handle_submit(self, request: web.Request) -> web.StreamResponse:
        key = self.server.api_key
        idempotency_key = request.headers.get("Idempotency-Key")
        replay_key = (key, idempotency_key) if idempotency_key else None
        if self.server.honour_idempotency and replay_key is not None and replay_key in self.replies:
            self.server.counters.idempotent_replays += 1
            return web.json_response(self.replies[replay_key])
        body = _read_json(await request.read())  # cached by aiohttp since the middleware
        submission = validate_submission(body, self.catalogue, self.allowed)
        generation = self._create(submission, key, idempotency_key)
        answer = submit_body(generation, self.server.dialect)
        if self.server.honour_idempotency and replay_key is not None:
            self.replies[replay_key] = answer
        return web.json_response(answer)

    async def _handle_generation(self, request: web.Request) -> web.StreamResponse:
        generation_id = request.query.get("id", "")
        if not generation_id:
            raise ApiError(400, "The 'id' query parameter is required", "invalid_request_error")
        if self.server.dialect == "reference" and self.server.guide_route_on_reference == "404":
            raise ApiError(404, "Not found", "not_found")
        generation = self._visible(generation_id)
        if self.server.dialect == "reference":
            if self.server.billing_after_completion and generation.status == "processing":
                raise ApiError(404, "Generation not found", "not_found")
            return web.json_response(billing_body(generation))
        return web.json_response(self._status(generation))

    async def _handle_video(self, request: web.Request) -> web.StreamResponse:
        generation_id = request.match_info["id"]
        if self.server.dialect == "guide":
            raise ApiError(404, "Not found", "not_found")
        return web.json_response(self._status(self._visible(generation_id)))

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        allowed = self.allowed
        models = [m for m in self.catalogue.models.values() if allowed is None or m.id in allowed]
        return web.json_response(model_list_body(models))

    async def _handle_key_info(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._key_info())

    async def _handle_media(self, request: web.Request) -> web.StreamResponse:
        record = _record(request, None, time.monotonic())
        self.server.media_log.append(record)
        self.server.counters.media_requests += 1
        if record.has_credentials:
            self.server.counters.media_requests_with_auth += 1
        name = request.match_info["name"]
        generation_id = name.removesuffix(".mp4")
        self.ledger.settle(time.monotonic())
        generation = self.ledger.generations.get(generation_id)
        if not name.endswith(".mp4") or generation is None or generation.status != "completed":
            return web.Response(status=404, text="Not Found")
        return web.Response(body=fake_mp4(generation_id), content_type="video/mp4")

    # -- generations ----------------------------------------------------------------------

    def _visible(self, generation_id: str) -> SimGeneration:
        """The generation, or a 404 while it is younger than ``not_found_grace``."""
        generation = self.ledger.lookup(generation_id)
        if (
            time.monotonic()
            < generation.submitted_at + self.server.not_found_grace / self.server.speed
        ):
            raise ApiError(404, "Generation not found", "not_found")
        return generation

    def _check_daily_limit(self, submission: Submission) -> None:
        """403 when the estimated cost would take the day's spend past ``daily_limit``."""
        limit = self.server.daily_limit
        if limit is None:
            return
        spent = self.ledger.spent()
        cost = submission.model.cost(submission.duration)
        if spent + cost > limit:
            raise ApiError(
                403,
                f"Daily spend limit reached: {format_money(spent)} of {format_money(limit)} "
                f"spent today; this request is estimated at {format_money(cost)}",
                "permission_error",
                code="daily_limit_exceeded",
            )

    def _create(
        self, submission: Submission, key: str, idempotency_key: str | None
    ) -> SimGeneration:
        self._check_daily_limit(submission)
        generation = self.ledger.create(
            submission,
            key=key,
            idempotency_key=idempotency_key,
            dialect=self.server.dialect,
            speed=self.server.speed,
            auto_complete=self.server.auto_complete,
            planned_error=self._planned_error(submission.prompt),
        )
        self.server.counters.generations_created += 1
        return generation

    def _planned_error(self, prompt: str) -> dict[str, str] | None:
        if self.fail_re is not None and self.fail_re.search(prompt):
            return {"message": "Content policy violation", "type": "invalid_request_error"}
        if self.server.failure_rate > 0 and self.rng.random() < self.server.failure_rate:
            return {"message": "Upstream generation failed", "type": "upstream_error"}
        return None

    def _status(self, generation: SimGeneration) -> dict[str, Any]:
        options = StatusOptions(
            dialect=self.server.dialect,
            speed=self.server.speed,
            media_base_url=self.server.media_base_url,
            wrap_data=self.server.wrap_data,
            top_level_video_url=self.server.top_level_video_url,
            video_url_at=self.server.video_url_at,
            cost_in_status=self.server.cost_in_status,
        )
        return status_body(generation, options, time.monotonic())

    def _key_info(self) -> dict[str, Any]:
        balance = self.ledger.balance
        limit = self.server.rate_limit
        return key_info_body(
            shape=self.server.key_info_shape,
            key=self.server.api_key,
            balance=_UNLIMITED_BALANCE if balance is None else balance,
            rpm=round(limit.limit * 60 / limit.window) if limit else None,
            allowed_models=sorted(self.allowed) if self.allowed is not None else None,
            requests_today=self.server.counters.requests,
            daily_limit=self.server.daily_limit,
            generations=self.ledger.generations.values(),
        )


def _route_name(request: web.Request) -> str | None:
    return request.match_info.route.name


def _record(request: web.Request, body: Any, now: float) -> RecordedRequest:
    return RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers=dict(request.headers),
        json=body,
        time=now,
    )


def _read_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _reset_connection(request: web.Request) -> web.Response:
    """Drop the connection without answering (the returned response is never sent)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


def _truncate(response: web.StreamResponse) -> web.StreamResponse:
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    half = response.body[: len(response.body) // 2]
    return web.Response(body=half, status=response.status, content_type="application/json")
