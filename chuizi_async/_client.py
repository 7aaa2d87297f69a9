"""The session: configuration, lifecycle, the public methods, and the wiring of its parts.

``Client`` holds no machinery of its own; it wires these together, once, in ``__init__``:

- ``_sender.Sender``: every API call (retries, the request budget, redirects and the API key's
  headers, then the ``Transport``), and downloads on the same path outside the budget;
- ``_lifecycle.Lifecycle``: opens the client in the running event loop, reopens it in the
  next one, closes it once; it holds the background tasks (``_background.BackgroundTasks``:
  the poller, each submission's send, ``as_completed``'s submitter) and the current
  ``_tracker.Tracker`` (the pending handles and the ``_poller.Poller`` that checks them);
- ``_submitter.Submitter``: every submission; batches get it in ``_batch.BatchParts``;
- ``_status.StatusRoutes``: which route reports a status;
- ``_account.Account``: billing records, the live catalogue, the API key's balance;
- ``_download.save_video``: where a video goes on disk; ``_generate.generate_within``:
  ``generate()``'s one deadline over the submission and the wait.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, overload

from ._account import Account, generation_id_of
from ._as_completed import AsCompleted
from ._auth import AuthHeaders
from ._batch import BatchParts
from ._budget import Priority, RequestBudget
from ._checks import check_count, check_seconds
from ._config import Limits, Secret, check_base_url, resolve_limits, resolve_time_scale
from ._download import save_video
from ._exceptions import InvalidRequest
from ._generate import generate_within
from ._generate_many import generate_many
from ._generation import Generation
from ._journal import Journal
from ._lifecycle import Lifecycle
from ._models import (
    BillingRecord,
    GenerationRequest,
    GenerationStatus,
    ImageInput,
    KeyInfo,
    RemoteModel,
    Video,
)
from ._policy import PollPolicy, Schedule
from ._poller import Poller, PollerStats
from ._retries import RETRY_SUBMISSIONS, RetrySubmissions
from ._sender import ClientStats, Sender
from ._status import StatusRoute, StatusRoutes
from ._submitter import Submitter
from ._tracker import Tracker
from ._transport import DEFAULT_TIMEOUT, AiohttpTransport, Transport, pool_size

__all__ = ["DEFAULT_BASE_URL", "Client", "ClientStats", "StatusRoute"]

DEFAULT_BASE_URL = "https://api.chuizi.ai/v1"
_STUCK_CHECK = 8  # a status check is abandoned after timeout / this (see Poller.check_timeout) ...
_STUCK_FLOOR = 5.0  # ... but never before this many seconds (of the API's time), nor timeout / 2


class Client:
    """An async session with the chuizi.ai video API.

    ::

        async with chuizi_async.Client() as client:          # key from CHUIZI_API_KEY
            video = await client.generate("google/veo-3.1-fast", "a cat watching rain")
            print(video.url, video.cost)

    One connection pool, one request budget and one poller task serve every generation of the
    client. Keep one client for the life of a service; ``aclose()`` (or leaving ``async
    with``) stops the poller and resolves what is still pending with ``ClientClosed``.

    ``retry_submissions`` says when a submission (a POST, which creates and bills) is sent
    again. ``"idempotent"`` (the default): after any transient failure, with the same
    ``Idempotency-Key``; a server that ignores it may then create and bill a second
    generation. ``"safe"``: only when nothing can have been created (no connection was made,
    or the server answered 429 or a retryable 5xx); a request that went out with no answer
    raises ``SubmissionUncertain`` instead: never paid twice, but it needs a look.

    ``timeout`` (seconds per request) and ``max_retries`` are the client's own, as in
    openai-python; ``poll`` is the poller's ``PollPolicy``; ``limits`` (``Limits``) bounds
    the connections and, when you know one, the rate of requests. ``time_scale`` divides
    every delay the client chooses by itself (polling, retry backoff, pauses, the assumed
    rate window): for simulators and tests, ``FakeChuizi(speed=100)`` pairs with
    ``time_scale=100``. ``max_connections`` is deprecated: ``Limits(max_connections=...)``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        poll: PollPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        limits: Limits | None = None,
        time_scale: float = 1.0,
        allow_insecure_http: bool = False,
        status_route: StatusRoute = "auto",
        transport: Transport | None = None,
        retry_submissions: RetrySubmissions = "idempotent",
        max_connections: int | None = None,
    ) -> None:
        api_key = api_key if api_key is not None else os.environ.get("CHUIZI_API_KEY")
        if not api_key or not api_key.strip():
            raise InvalidRequest(
                "no API key: pass Client(api_key=...) or set the CHUIZI_API_KEY "
                "environment variable"
            )
        timeout = check_seconds("Client(timeout=...)", timeout)
        check_count("Client(max_retries=...)", max_retries, minimum=0)
        if poll is not None and not isinstance(poll, PollPolicy):
            raise InvalidRequest(f"Client(poll=...) must be a PollPolicy, not {poll!r}")
        policy = poll if poll is not None else PollPolicy()
        self.limits = resolve_limits(limits, max_connections, policy.max_requests_per_second)
        self.time_scale = resolve_time_scale(time_scale, policy.time_scale)
        if retry_submissions not in RETRY_SUBMISSIONS:
            raise InvalidRequest(
                f"retry_submissions must be 'idempotent' or 'safe', not {retry_submissions!r}"
            )
        self.base_url = check_base_url(
            base_url or os.environ.get("CHUIZI_BASE_URL") or DEFAULT_BASE_URL, allow_insecure_http
        )
        self.poll_policy = policy
        self.retry_submissions: RetrySubmissions = retry_submissions
        self._transport: Transport = transport or AiohttpTransport(
            max_connections=self.limits.max_connections
        )
        self.budget = RequestBudget(
            max_rate=self.limits.max_requests_per_second, time_scale=self.time_scale
        )
        self._schedule = Schedule(
            self.poll_policy, saturated=self.budget.saturated, time_scale=self.time_scale
        )
        self._stats = ClientStats()
        self._sender = Sender(
            auth=AuthHeaders(self.base_url, Secret(api_key.strip())),
            transport=self._transport,
            budget=self.budget,
            timeout=timeout,
            max_retries=max_retries,
            time_scale=self.time_scale,
            stats=self._stats,
        )
        self._send = self._sender.send
        self._account = Account(send=self._send, retry_delay=self._schedule.retry_delay)
        self._lifecycle = Lifecycle(
            new_tracker=self._new_tracker, budget=self.budget, transport=self._transport
        )
        self._routes = StatusRoutes(status_route)
        # the two ways a status is fetched: polling (one attempt) and retrieve() (retried)
        self._get_once = functools.partial(self._sender.get_once, priority=Priority.POLL)
        self._get_retrying = functools.partial(self._send, "GET", priority=Priority.POLL)
        self._ensure_open = self._lifecycle.ensure_open
        start_soon = self._lifecycle.background.start_soon  # the client's background tasks
        self._submitter = Submitter(
            send=self._send,
            register=self._lifecycle.register,
            start_soon=start_soon,
            ensure_open=self._ensure_open,
            retry_submissions=retry_submissions,
            on_answer=self._routes.hint_from,
            stats=self._stats,
        )
        self._batch_parts = BatchParts(
            submitter=self._submitter,
            # a transport of one's own that does not say its pool: this client's setting
            workers=pool_size(self._transport) or self.limits.max_connections,
            track=self.track,
            want_cost=self._lifecycle.want_cost,  # the tracker of the loop it is open in
            list_models=self.list_models,
            ensure_open=self._ensure_open,
            start_soon=start_soon,
        )

    def _new_tracker(self, stats: PollerStats) -> Tracker:
        policy = self.poll_policy
        poller = Poller(
            fetch=self._fetch_status,
            schedule=self._schedule,
            give_up_after=policy.give_up_after / self.time_scale,
            max_in_flight=policy.max_in_flight,
            not_found_grace=policy.not_found_grace / self.time_scale,
            billed_cost=self._account.billed_cost,
            check_timeout=max(
                self.timeout / _STUCK_CHECK, min(self.timeout / 2, _STUCK_FLOOR / self.time_scale)
            ),
            stats=stats,
        )
        return Tracker(poller)

    @property
    def timeout(self) -> float:
        """Seconds an attempt may take (the send path's setting)."""
        return self._sender.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._sender.timeout = value

    @property
    def max_retries(self) -> int:
        """Retries after a transient failure (the send path's setting)."""
        return self._sender.max_retries

    @max_retries.setter
    def max_retries(self, value: int) -> None:
        self._sender.max_retries = value

    def __repr__(self) -> str:
        return f"<chuizi_async.Client base_url={self.base_url!r} {self._lifecycle.describe()}>"

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self._ensure_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the poller and close the connections.

        Submissions already on the wire are awaited (up to ``timeout``) so that none the
        server accepted goes unrecorded. Every generation still pending resolves with
        ``ClientClosed``, carrying its id: ``track(id)`` on another client resumes it.
        """
        await self._lifecycle.aclose(functools.partial(self._submitter.aclose, grace=self.timeout))

    @property
    def closed(self) -> bool:
        return self._lifecycle.closed

    @property
    def pending(self) -> list[Generation]:
        """Handles still being tracked (for handing over on shutdown: keep their ids)."""
        return self._lifecycle.tracker.pending

    @property
    def stats(self) -> ClientStats:
        """Requests made so far, by kind."""
        self._stats.rate_limited = self.budget.rate_limited
        return self._stats

    @property
    def poller_stats(self) -> PollerStats:
        return self._lifecycle.tracker.stats

    # -- submissions -------------------------------------------------------------------------

    async def submit(
        self,
        model: str,
        prompt: str,
        *,
        duration: int | None = None,
        image: ImageInput | None = None,
        key: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        reference_images: Sequence[ImageInput] | None = None,
        video: str | None = None,
        watermark: bool | None = None,
    ) -> Generation:
        """Submit one generation; returns its handle once the server accepted it.

        Validated against ``MODELS`` first (``InvalidRequest``, nothing sent). Retries reuse
        one ``Idempotency-Key``, so a server that honours it never bills twice.
        """
        request = GenerationRequest(
            model,
            prompt,
            duration=duration,
            image=image,
            key=key,
            extra_body=extra_body,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            reference_images=tuple(reference_images) if reference_images is not None else None,
            video=video,
            watermark=watermark,
        )
        return await self.submit_request(request)

    async def submit_request(
        self,
        request: GenerationRequest | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        on_accepted: Callable[[Generation], object] | None = None,
        index: int | None = None,
    ) -> Generation:
        """``submit`` for a ``GenerationRequest`` (or mapping).

        ``idempotency_key`` pins the ``Idempotency-Key`` (a journal resends an interrupted
        submission with the same one); ``on_accepted`` is called with the handle the moment it
        is tracked. With ``retry_submissions="safe"``, a request that went out without an
        answer raises ``SubmissionUncertain`` (it may or may not have created a generation).
        """
        return await self._submitter.submit(
            request, idempotency_key=idempotency_key, on_accepted=on_accepted, index=index
        )

    async def generate(
        self,
        model: str,
        prompt: str,
        *,
        duration: int | None = None,
        image: ImageInput | None = None,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        reference_images: Sequence[ImageInput] | None = None,
        video: str | None = None,
        watermark: bool | None = None,
    ) -> Video:
        """Submit and wait for the video. Cancelling the caller does not stop the tracking.

        ``timeout`` (seconds, > 0) bounds the whole call, the submission included, and then
        raises ``GenerationTimeout``. What the server accepted stays tracked: a submission
        already on the wire goes on in the client, and its generation, once accepted, is
        in ``client.pending``.
        """
        submit = functools.partial(
            self.submit,
            model,
            prompt,
            duration=duration,
            image=image,
            extra_body=extra_body,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            reference_images=reference_images,
            video=video,
            watermark=watermark,
        )
        return await generate_within(timeout, submit)

    @overload
    async def generate_many(
        self,
        requests: Iterable[GenerationRequest | Mapping[str, Any]],
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
        journal: Journal | str | os.PathLike[str] | None = None,
        max_cost: Decimal | None = None,
        fetch_costs: bool = False,
    ) -> list[Video]: ...

    @overload
    async def generate_many(
        self,
        requests: Iterable[GenerationRequest | Mapping[str, Any]],
        *,
        concurrency: int | None = None,
        return_exceptions: bool,
        journal: Journal | str | os.PathLike[str] | None = None,
        max_cost: Decimal | None = None,
        fetch_costs: bool = False,
    ) -> list[Video | BaseException]: ...

    async def generate_many(
        self,
        requests: Iterable[GenerationRequest | Mapping[str, Any]],
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
        journal: Journal | str | os.PathLike[str] | None = None,
        max_cost: Decimal | None = None,
        fetch_costs: bool = False,
    ) -> list[Video] | list[Video | BaseException]:
        """Generate all; results in input order.

        ``list[Video]`` without ``return_exceptions`` (the first error raises), else
        ``list[Video | BaseException]``.

        :param concurrency: generations in flight at once (None: all, paced by the budget).
        :param return_exceptions: put each failure in its place instead of raising the first.
            When raising, no further request is submitted and the accepted generations stay
            tracked (``client.pending``; their ids are in the error's notes).
        :param journal: a ``Journal`` or a path: resume after a crash without paying twice.
        :param max_cost: US dollars; nothing more is submitted once the spent cost plus the
            estimate of what is in flight would pass it (``CostLimitExceeded``).
        :param fetch_costs: fill in ``Video.cost`` from the billing record where the status
            answer has none (one low-priority request per such video; always on with
            ``max_cost``).

        The submitter runs in a task group of the calling task: the call waits for it (see
        ``_background`` for where each task runs).
        """
        await self._ensure_open()
        return await generate_many(
            self._batch_parts,
            requests,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            journal=journal,
            max_cost=max_cost,
            fetch_costs=fetch_costs,
        )

    def as_completed(
        self,
        requests: Iterable[GenerationRequest | Mapping[str, Any]],
        *,
        concurrency: int | None = None,
        journal: Journal | str | os.PathLike[str] | None = None,
        max_cost: Decimal | None = None,
        fetch_costs: bool = False,
    ) -> AsCompleted:
        """Finished handles in completion order, while submissions go on.

        ``async with client.as_completed(reqs) as results: async for handle in results``
        stops further submissions when the block is left early. The submitter runs in the
        client's background tasks, between the caller's steps; leaving the block stops it
        and waits for it.
        """
        return AsCompleted(
            self._batch_parts,
            requests,
            concurrency=concurrency,
            journal=journal,
            max_cost=max_cost,
            fetch_costs=fetch_costs,
        )

    def track(self, generation_id: str, *, model: str | None = None) -> Generation:
        """Follow an id submitted elsewhere; scheduled like a fresh submission (opens the
        client in the running event loop if needed)."""
        if not isinstance(generation_id, str) or not generation_id.strip():
            raise InvalidRequest("track() needs a generation id such as 'gen-0123456789abcdef'")
        self._lifecycle.open_soon("track()")
        return self._lifecycle.register(generation_id.strip(), model, None)

    # -- status ------------------------------------------------------------------------------

    async def retrieve(self, generation_id: str) -> GenerationStatus:
        """One status request (retried if transient), no polling."""
        await self._ensure_open()
        return await self._routes.fetch(generation_id, self._get_retrying)

    def _fetch_status(self, handle: Generation) -> Awaitable[GenerationStatus]:
        # a plain function returning the check's awaitable: no frame of its own per check
        assert handle.id is not None
        self._stats.status_checks += 1
        return self._routes.check(handle.id, self._get_once)

    # -- costs -------------------------------------------------------------------------------

    async def billing(self, generation: Video | str) -> BillingRecord:
        """The billing record of a finished generation (``GET /v1/generation?id=``).

        The API reference records the cost only once the task completes, and may answer a
        status without one: ``(await client.billing(video)).cost`` then reads it. A record
        not there yet (404) is asked for again a couple of times, then ``NotFoundError``.
        Batches that need costs (``max_cost``, ``fetch_costs``) do this themselves.
        """
        generation_id = generation_id_of(generation)
        await self._ensure_open()
        return await self._account.billing(generation_id)

    # -- downloads -----------------------------------------------------------------------------

    async def download(
        self,
        video_or_url: Video | str,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
    ) -> Path:
        """Save a video; returns its path.

        ``dest`` a folder (existing, or ending with a separator): ``<id>.mp4`` inside it, the
        id sanitized; otherwise the file itself. An existing file is returned untouched unless
        ``overwrite``. Streamed to a temporary file beside the target, ``Content-Length``
        checked, then renamed: a failed download leaves no file. Transient errors are retried.
        The key is never sent to the media host. Not paced by the request budget: the API's
        rate limits count requests to the API, and videos come from the CDN, another host.
        """
        await self._ensure_open()
        return await save_video(self._sender.download, video_or_url, dest, overwrite=overwrite)

    # -- account -----------------------------------------------------------------------------

    async def list_models(self) -> list[RemoteModel]:
        """The live catalogue of models this key may call (``GET /v1/models``)."""
        await self._ensure_open()
        return await self._account.models()

    async def key_info(self) -> KeyInfo:
        """The key's balance and limits (``GET /v1/key/info``)."""
        await self._ensure_open()
        return await self._account.key_info()
