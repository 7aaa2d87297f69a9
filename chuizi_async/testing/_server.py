"""``FakeChuizi``: an in-process chuizi.ai API server for tests and demos."""

from __future__ import annotations

import asyncio
import enum
import json
import os
import random
import re
import string
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import attrs
from aiohttp import web

from .._client import Client
from ._catalogue import Catalogue, Submission, validate_submission
from ._errors import ApiError, error_response
from ._faults import BAD_GATEWAY_HTML, FaultKind, Faults, pick_fault
from ._ledger import Ledger
from ._media import fake_mp4
from ._ratelimit import RateLimit, RateLimiter, format_seconds
from ._realism import REALISMS, Realism, harsh_changes
from ._records import Counters, RecordedRequest, SimGeneration
from ._render import (
    Dialect,
    StatusOptions,
    billing_body,
    check_video_url_at,
    format_money,
    key_info_body,
    model_list_body,
    status_body,
    submit_body,
)

__all__ = ["DEFAULT_FAIL_PATTERN", "FakeChuizi"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HOST = "127.0.0.1"
DEFAULT_FAIL_PATTERN = "(?i)forbidden"
"""Prompts matching it fail with a content-policy error, everywhere the simulator runs."""
_ALPHANUMERIC = string.ascii_letters + string.digits
_UNLIMITED_BALANCE = Decimal("1000000")
_SHUTDOWN_TIMEOUT = 0.25
_FIXED = attrs.setters.frozen


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


def _to_decimal(value: Decimal | int | str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


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


@attrs.define(eq=False, kw_only=True, repr=False)
class FakeChuizi:
    """A real chuizi.ai API server on ``127.0.0.1``, plus a media host on another port::

        async with FakeChuizi(speed=100) as server:
            headers = {"Authorization": f"Bearer {server.api_key}"}
            await session.post(f"{server.base_url}/videos/generations", json=..., headers=headers)

    ``speed`` compresses time: a generation taking ``T`` server seconds (drawn uniformly from
    its model's ``completion_times`` range) is ready after ``T / speed`` real seconds, and
    reports ``latency_ms = T * 1000``. Rate-limit windows and ``Faults.slow_seconds`` are real
    seconds. ``faults``, ``balance``, ``auto_complete``, ``failure_rate`` and the answer-shape
    knobs can be changed at runtime; the other arguments are fixed at construction.

    A prompt matching ``fail_pattern`` (by default, one containing "forbidden") fails with a
    content-policy error, as the real API would; ``fail_pattern=None`` turns that off.
    ``server.client()`` is a ``Client`` matched to the server (its URL, key and clock).

    ``realism="harsh"`` turns on, at once, every unkind answer the provider's pages allow
    (the API reference's routes and words, wrapped answers, the video in a list, no cost in
    the status, a billing record only after completion, 404s for fresh ids, no request-id
    echo, ``Idempotency-Key`` ignored, the older key-info shape, and with a ``rate_limit`` its
    reset in epoch milliseconds): see ``chuizi_async.testing._realism``.

    ``video_url_at``: where a finished answer puts the video URL, a dotted path such as
    ``"output.videos[0].url"`` (``[0]``: a one-element list); an unknown place such as
    ``"result.media.src"`` is a server the client cannot read. ``echo_request_id``: answer
    with the request's ``X-Request-Id`` (one made up when it has none), or with none.
    ``daily_limit``: a daily spend cap in dollars; a submission that would pass it gets 403
    ``daily_limit_exceeded`` (a model outside ``allowed_models`` gets 403
    ``model_not_allowed``). Every error body carries its documented ``code``.

    Where the API reference allows a less helpful answer: ``cost_in_status=False`` leaves the
    cost out of the ``reference`` dialect's status answers, so that it lives only in the
    billing record on the guide's route (the guide's own status answer keeps it, as its
    example does); ``billing_after_completion=True`` has that record answer 404 until the
    generation has finished; ``not_found_grace`` (server seconds) has both status routes
    answer 404 for an id younger than that; ``daily_limit`` (dollars) answers 403
    ``daily_limit_exceeded`` to a submission that would take the day's spend past it.
    """

    _given_key: str | None = attrs.field(default=None, alias="api_key", on_setattr=_FIXED)
    speed: float = attrs.field(default=1.0, on_setattr=_FIXED)
    completion_times: Mapping[str, tuple[float, float]] = attrs.field(
        factory=dict, on_setattr=_FIXED
    )
    default_completion_time: tuple[float, float] | None = attrs.field(
        default=None, on_setattr=_FIXED
    )
    fail_pattern: str | None = attrs.field(default=DEFAULT_FAIL_PATTERN, on_setattr=_FIXED)
    failure_rate: float = 0.0
    auto_complete: bool = True
    seed: int | None = attrs.field(default=None, on_setattr=_FIXED)
    dialect: Dialect = "guide"
    guide_route_on_reference: Literal["billing", "404"] = "billing"
    wrap_data: bool = False
    top_level_video_url: bool = False
    video_url_at: str = attrs.field(
        default="output.video_url",
        validator=lambda _, __, value: check_video_url_at(value),
        on_setattr=attrs.setters.validate,
    )
    key_info_shape: Literal["data", "legacy"] = "data"
    extra_models: Mapping[str, int] = attrs.field(factory=dict, on_setattr=_FIXED)
    allowed_models: Collection[str] | None = attrs.field(default=None, on_setattr=_FIXED)
    honour_idempotency: bool = True
    echo_request_id: bool = True
    daily_limit: Decimal | None = attrs.field(
        default=None, converter=_to_decimal, on_setattr=attrs.setters.convert
    )
    cost_in_status: bool = True
    billing_after_completion: bool = False
    not_found_grace: float = 0.0
    _initial_balance: Decimal | None = attrs.field(
        default=None, converter=_to_decimal, alias="balance"
    )
    rate_limit: RateLimit | None = attrs.field(default=None, on_setattr=_FIXED)
    _faults: Faults | None = None
    realism: Realism = attrs.field(default="kind", on_setattr=_FIXED)

    counters: Counters = attrs.field(init=False, factory=Counters)
    requests_log: list[RecordedRequest] = attrs.field(init=False, factory=list)
    media_log: list[RecordedRequest] = attrs.field(init=False, factory=list)
    _rng: random.Random = attrs.field(init=False)
    _ledger: Ledger = attrs.field(init=False)
    _key: str = attrs.field(init=False)
    _catalogue: Catalogue = attrs.field(init=False)
    _allowed: frozenset[str] | None = attrs.field(init=False)
    _fail_re: re.Pattern[str] | None = attrs.field(init=False)
    _limiter: RateLimiter | None = attrs.field(init=False)
    _replies: dict[tuple[str, str], dict[str, Any]] = attrs.field(init=False, factory=dict)
    _api_runner: web.AppRunner | None = attrs.field(init=False, default=None)
    _media_runner: web.AppRunner | None = attrs.field(init=False, default=None)
    _site: web.TCPSite | None = attrs.field(init=False, default=None)
    _port: int = attrs.field(init=False, default=0)
    _media_port: int = attrs.field(init=False, default=0)
    _state: _State = attrs.field(init=False, default=_State.UNOPENED)

    def __attrs_post_init__(self) -> None:
        if self.realism not in REALISMS:
            raise ValueError(f"realism must be one of {', '.join(REALISMS)}, not {self.realism!r}")
        if self.realism == "harsh":
            for name, value in harsh_changes(self).items():
                object.__setattr__(self, name, value)  # before anything is built from them
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        self._rng = random.Random(self.seed)
        self._ledger = Ledger(rng=self._rng, balance=self._initial_balance)
        self._key = self._given_key or "ck-" + "".join(self._rng.choices(_ALPHANUMERIC, k=32))
        self._catalogue = Catalogue.build(
            extra_models=self.extra_models,
            completion_times=self.completion_times,
            default_completion_time=self.default_completion_time,
        )
        allowed = self.allowed_models
        self._allowed = None if allowed is None else self._catalogue.resolve_all(allowed)
        self._fail_re = re.compile(self.fail_pattern) if self.fail_pattern else None
        self._limiter = RateLimiter(self.rate_limit) if self.rate_limit else None

    def __repr__(self) -> str:
        where = f" {self.base_url}" if self._port else ""
        return f"<FakeChuizi {self._state.name.lower()}{where} dialect={self.dialect!r}>"

    # -- public state ---------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The API key the server accepts: as given, else ``ck-`` and 32 alphanumerics."""
        return self._key

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"http://{_HOST}:{self._require_port(self._port)}/v1"

    @property
    def media_base_url(self) -> str:
        """The media host, another origin: ``http://127.0.0.1:<port>``."""
        return f"http://{_HOST}:{self._require_port(self._media_port)}"

    @property
    def faults(self) -> Faults | None:
        """The injected faults; settable at runtime (``None`` turns them off)."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        self._faults = faults

    @property
    def balance(self) -> Decimal | None:
        """The key's balance in dollars (``None``: unlimited); settable to top up."""
        self._ledger.settle(time.monotonic())
        return self._ledger.balance

    @balance.setter
    def balance(self, value: Decimal | int | str | None) -> None:
        self._ledger.balance = _to_decimal(value)

    @property
    def generations(self) -> dict[str, SimGeneration]:
        """Every generation by id, with statuses brought up to date."""
        self._ledger.settle(time.monotonic())
        return self._ledger.generations

    def ready_at(self, generation_id: str) -> float | None:
        """The ``time.monotonic()`` value at which the video is ready (``None``: not scheduled)."""
        return self._ledger.generations[generation_id].ready_at

    def complete(self, generation_id: str) -> None:
        """Finish a processing generation successfully now (no-op if already finished)."""
        self._ledger.force(generation_id, None, self.speed)

    def fail(
        self,
        generation_id: str,
        *,
        message: str = "Upstream generation failed",
        type: str = "upstream_error",
    ) -> None:
        """Fail a processing generation now (no-op if already finished)."""
        error = {"message": message, "type": type}
        self._ledger.force(generation_id, error, self.speed)

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> FakeChuizi:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self, *, port: int = 0, media_port: int = 0) -> None:
        """Start the API and media servers on ``127.0.0.1`` (port 0: a free one)."""
        if self._state is not _State.UNOPENED:
            raise RuntimeError("A FakeChuizi can only be started once")
        self._state = _State.OPENED
        self._api_runner = await self._setup_runner(self._api_app())
        self._media_runner = await self._setup_runner(self._media_app())
        media_site = web.TCPSite(self._media_runner, _HOST, media_port)
        await media_site.start()
        self._media_port = media_site.port
        self._port = port
        await self.start_listening()

    def client(self, **options: Any) -> Client:
        """A ``Client`` of this server: its URL and key, its clock (``time_scale=speed``).

        Keyword arguments go to ``Client`` (``time_scale=`` replaces the matched clock).
        """
        options.setdefault("base_url", self.base_url)
        poll = options.get("poll")
        if poll is None or poll.time_scale is None:  # else the deprecated PollPolicy(time_scale=)
            options.setdefault("time_scale", self.speed)
        return Client(options.pop("api_key", self.api_key), **options)

    async def aclose(self) -> None:
        """Stop both servers, closing every connection."""
        if self._state is not _State.OPENED:
            self._state = _State.CLOSED
            return
        self._state = _State.CLOSED
        for runner in (self._api_runner, self._media_runner):
            if runner is not None:
                await runner.cleanup()
        self._site = None

    async def stop_listening(self) -> None:
        """Close the API listener and its connections, keeping all state and the port."""
        if self._site is None or self._api_runner is None:
            return
        await self._site.stop()
        self._site = None
        server = self._api_runner.server
        if server is not None:
            for connection in server.connections:
                connection.close()  # idle keep-alive connections too
            await server.shutdown(_SHUTDOWN_TIMEOUT)

    async def start_listening(self) -> None:
        """Listen for API requests again, on the same port as before."""
        if self._state is not _State.OPENED or self._api_runner is None:
            raise RuntimeError("The server is not running")
        if self._site is not None:
            return
        site = web.TCPSite(self._api_runner, _HOST, self._port, reuse_address=True)
        await site.start()
        self._site = site
        self._port = site.port

    async def _setup_runner(self, app: web.Application) -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        return runner

    def _require_port(self, port: int) -> int:
        if not port:
            raise RuntimeError("The server is not started")
        return port

    # -- applications ---------------------------------------------------------------------

    def _api_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v1/videos/generations", self._handle_submit, name="submit")
        app.router.add_get("/v1/generation", self._handle_generation, name="generation")
        app.router.add_get("/v1/videos/{id}", self._handle_video, name="video")
        app.router.add_get("/v1/models", self._handle_models, name="models")
        app.router.add_get("/v1/key/info", self._handle_key_info, name="key_info")
        return app

    def _media_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/videos/{name}", self._handle_media)
        return app

    # -- request path ---------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        now = time.monotonic()
        body = _read_json(await request.read()) if request.can_read_body else None
        self._count_request(request)
        self.requests_log.append(_record(request, body, now))
        self._ledger.settle(now)
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
        if self.echo_request_id:
            sent = request.headers.get("X-Request-Id")
            response.headers["X-Request-Id"] = sent or f"req_{os.urandom(8).hex()}"
        self._count_answer(response.status)
        return response

    def _count_request(self, request: web.Request) -> None:
        self.counters.requests += 1
        route = _route_name(request)
        if route == "submit":
            self.counters.submissions += 1
        elif route in ("generation", "video"):
            generation_id = request.match_info.get("id") or request.query.get("id", "")
            self.counters.status_checks += 1
            self.counters.status_checks_by_id[generation_id] += 1

    def _count_answer(self, status: int) -> None:
        if status == 429:
            self.counters.rate_limited += 1
        elif status == 402:
            self.counters.payment_required += 1

    def _authenticate(self, request: web.Request) -> str:
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-key")
        if not key:
            raise ApiError(401, "Missing API key", "authentication_error", code="invalid_api_key")
        if key != self._key:
            raise ApiError(401, "Invalid API key", "authentication_error", code="invalid_api_key")
        return key

    def _admit(self, request: web.Request, key: str, body: Any, now: float) -> dict[str, str]:
        if self._limiter is None:
            return {}
        model = None
        if _route_name(request) == "submit" and isinstance(body, dict):
            name = body.get("model")
            found = self._catalogue.resolve(name) if isinstance(name, str) else None
            model = found.id if found else None
        return self._limiter.admit(key, model, now)

    async def _dispatch(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        faults = self._faults
        submission = _route_name(request) == "submit"
        number = self.counters.submissions  # counted on arrival, with no await since
        fault = pick_fault(faults, self._rng, submission=submission, number=number)
        if fault is None or faults is None:
            return await handler(request)
        self.counters.faults[fault] += 1
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
        key = self._key
        idempotency_key = request.headers.get("Idempotency-Key")
        replay_key = (key, idempotency_key) if idempotency_key else None
        if self.honour_idempotency and replay_key is not None and replay_key in self._replies:
            self.counters.idempotent_replays += 1
            return web.json_response(self._replies[replay_key])
        body = _read_json(await request.read())  # cached by aiohttp since the middleware
        submission = validate_submission(body, self._catalogue, self._allowed)
        generation = self._create(submission, key, idempotency_key)
        answer = submit_body(generation, self.dialect)
        if self.honour_idempotency and replay_key is not None:
            self._replies[replay_key] = answer
        return web.json_response(answer)

    async def _handle_generation(self, request: web.Request) -> web.StreamResponse:
        generation_id = request.query.get("id", "")
        if not generation_id:
            raise ApiError(400, "The 'id' query parameter is required", "invalid_request_error")
        if self.dialect == "reference" and self.guide_route_on_reference == "404":
            raise ApiError(404, "Not found", "not_found")
        generation = self._visible(generation_id)
        if self.dialect == "reference":
            if self.billing_after_completion and generation.status == "processing":
                raise ApiError(404, "Generation not found", "not_found")
            return web.json_response(billing_body(generation))
        return web.json_response(self._status(generation))

    async def _handle_video(self, request: web.Request) -> web.StreamResponse:
        generation_id = request.match_info["id"]
        if self.dialect == "guide":
            raise ApiError(404, "Not found", "not_found")
        return web.json_response(self._status(self._visible(generation_id)))

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        allowed = self._allowed
        models = [m for m in self._catalogue.models.values() if allowed is None or m.id in allowed]
        return web.json_response(model_list_body(models))

    async def _handle_key_info(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._key_info())

    async def _handle_media(self, request: web.Request) -> web.StreamResponse:
        record = _record(request, None, time.monotonic())
        self.media_log.append(record)
        self.counters.media_requests += 1
        if record.has_credentials:
            self.counters.media_requests_with_auth += 1
        name = request.match_info["name"]
        generation_id = name.removesuffix(".mp4")
        self._ledger.settle(time.monotonic())
        generation = self._ledger.generations.get(generation_id)
        if not name.endswith(".mp4") or generation is None or generation.status != "completed":
            return web.Response(status=404, text="Not Found")
        return web.Response(body=fake_mp4(generation_id), content_type="video/mp4")

    # -- generations ----------------------------------------------------------------------

    def _visible(self, generation_id: str) -> SimGeneration:
        """The generation, or a 404 while it is younger than ``not_found_grace``."""
        generation = self._ledger.lookup(generation_id)
        if time.monotonic() < generation.submitted_at + self.not_found_grace / self.speed:
            raise ApiError(404, "Generation not found", "not_found")
        return generation

    def _check_daily_limit(self, submission: Submission) -> None:
        """403 when the estimated cost would take the day's spend past ``daily_limit``."""
        limit = self.daily_limit
        if limit is None:
            return
        spent = self._ledger.spent()
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
        generation = self._ledger.create(
            submission,
            key=key,
            idempotency_key=idempotency_key,
            dialect=self.dialect,
            speed=self.speed,
            auto_complete=self.auto_complete,
            planned_error=self._planned_error(submission.prompt),
        )
        self.counters.generations_created += 1
        return generation

    def _planned_error(self, prompt: str) -> dict[str, str] | None:
        if self._fail_re is not None and self._fail_re.search(prompt):
            return {"message": "Content policy violation", "type": "invalid_request_error"}
        if self.failure_rate > 0 and self._rng.random() < self.failure_rate:
            return {"message": "Upstream generation failed", "type": "upstream_error"}
        return None

    def _status(self, generation: SimGeneration) -> dict[str, Any]:
        options = StatusOptions(
            dialect=self.dialect,
            speed=self.speed,
            media_base_url=self.media_base_url,
            wrap_data=self.wrap_data,
            top_level_video_url=self.top_level_video_url,
            video_url_at=self.video_url_at,
            cost_in_status=self.cost_in_status,
        )
        return status_body(generation, options, time.monotonic())

    def _key_info(self) -> dict[str, Any]:
        balance = self._ledger.balance
        limit = self.rate_limit
        return key_info_body(
            shape=self.key_info_shape,
            key=self._key,
            balance=_UNLIMITED_BALANCE if balance is None else balance,
            rpm=round(limit.limit * 60 / limit.window) if limit else None,
            allowed_models=sorted(self._allowed) if self._allowed is not None else None,
            requests_today=self.counters.requests,
            daily_limit=self.daily_limit,
            generations=self._ledger.generations.values(),
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
