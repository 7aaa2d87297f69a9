"""``FakeChuizi``: an in-process chuizi.ai API server for tests and demos."""

from __future__ import annotations

import enum
import random
import re
import string
import time
from collections.abc import Collection, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import attrs
from aiohttp import web

from .._client import Client
from ._catalogue import Catalogue
from ._faults import Faults
from ._ledger import Ledger
from ._ratelimit import RateLimit, RateLimiter
from ._realism import REALISMS, Realism, harsh_changes
from ._records import Counters, RecordedRequest, SimGeneration
from ._render import (
    Dialect,
    check_video_url_at,
)
from ._routes import Routes

__all__ = ["DEFAULT_FAIL_PATTERN", "FakeChuizi"]

_HOST = "127.0.0.1"
DEFAULT_FAIL_PATTERN = "(?i)forbidden"
"""Prompts matching it fail with a content-policy error, everywhere the simulator runs."""
_ALPHANUMERIC = string.ascii_letters + string.digits
_SHUTDOWN_TIMEOUT = 0.25
_FIXED = attrs.setters.frozen


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


def _to_decimal(value: Decimal | int | str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


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
    _ledger: Ledger = attrs.field(init=False)
    _key: str = attrs.field(init=False)
    _routes: Routes = attrs.field(init=False)
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
        rng = random.Random(self.seed)
        self._ledger = Ledger(rng=rng, balance=self._initial_balance)
        self._key = self._given_key or "ck-" + "".join(rng.choices(_ALPHANUMERIC, k=32))
        catalogue = Catalogue.build(
            extra_models=self.extra_models,
            completion_times=self.completion_times,
            default_completion_time=self.default_completion_time,
        )
        allowed = self.allowed_models
        self._routes = Routes(
            self,
            ledger=self._ledger,
            rng=rng,
            catalogue=catalogue,
            allowed=None if allowed is None else catalogue.resolve_all(allowed),
            fail_re=re.compile(self.fail_pattern) if self.fail_pattern else None,
            limiter=RateLimiter(self.rate_limit) if self.rate_limit else None,
        )

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
        self._api_runner = await self._setup_runner(self._routes.api_app())
        self._media_runner = await self._setup_runner(self._routes.media_app())
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
