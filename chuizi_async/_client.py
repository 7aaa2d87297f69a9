"""The session: configuration, lifecycle and the public methods, over the parts of ``_parts``.

``Client`` holds no machinery of its own: ``__init__`` checks the settings, ``build_parts``
wires the send path, the lifecycle, the submitter and the rest, and each method hands its work
to one of them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, overload

from ._account import generation_id_of
from ._as_completed import AsCompleted
from ._batch import RequestLike
from ._batch_journal import JournalLike
from ._checks import check_count, check_seconds
from ._config import (
    DEFAULT_BASE_URL,
    Limits,
    check_retry_submissions,
    resolve_api_key,
    resolve_base_url,
    resolve_limits,
    resolve_poll,
    resolve_time_scale,
)
from ._download import save_video
from ._generate import generate_within
from ._generate_many import generate_many
from ._generation import Generation
from ._models import (
    BillingRecord,
    GenerationRequest,
    GenerationStatus,
    ImageInput,
    KeyInfo,
    RemoteModel,
    Video,
)
from ._parts import build_parts
from ._policy import PollPolicy
from ._poller import PollerStats
from ._retries import RetrySubmissions
from ._sender import ClientStats
from ._status import StatusRoute
from ._transport import DEFAULT_TIMEOUT, Transport

__all__ = ["DEFAULT_BASE_URL", "Client", "ClientStats", "StatusRoute"]


class Client:
    """An async session with the chuizi.ai video API.

    ::

        async with chuizi_async.Client() as client:          # key from CHUIZI_API_KEY
            video = await client.generate("google/veo-3.1-fast", "a cat watching rain")
            print(video.url, video.cost)

    One connection pool, one request budget and one poller task serve every generation of the
    client. Keep one client for the life of a service; ``aclose()`` (or leaving ``async
    with``) stops the poller and resolves what is still pending with ``ClientClosed``.

    ``timeout`` (seconds per request) and ``max_retries`` are the client's own, as in
    openai-python; ``poll`` is the poller's ``PollPolicy``; ``limits`` (``Limits``) bounds
    the connections and, when you know one, the rate of requests. ``time_scale`` divides
    every delay the client chooses by itself (polling, backoff, pauses): ``FakeChuizi(speed=
    100)`` pairs with ``time_scale=100``. ``retry_submissions`` says when a submission (which
    bills) is sent again: ``"idempotent"`` (the default) after any transient failure, with the
    same ``Idempotency-Key`` (a server that ignores it may bill twice); ``"safe"`` only when
    nothing can have been created, else ``SubmissionUncertain``: never paid twice.
    ``max_connections`` is deprecated: ``Limits(max_connections=...)``.
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
        secret = resolve_api_key(api_key)
        timeout = check_seconds("Client(timeout=...)", timeout)
        check_count("Client(max_retries=...)", max_retries, minimum=0)
        self.poll_policy = policy = resolve_poll(poll)
        self.limits = resolve_limits(limits, max_connections, policy.max_requests_per_second)
        self.time_scale = resolve_time_scale(time_scale, policy.time_scale)
        self.retry_submissions = check_retry_submissions(retry_submissions)
        self.base_url = resolve_base_url(base_url, allow_insecure_http)
        parts = build_parts(
            api_key=secret,
            base_url=self.base_url,
            policy=policy,
            limits=self.limits,
            time_scale=self.time_scale,
            timeout=timeout,
            max_retries=max_retries,
            status_route=status_route,
            transport=transport,
            retry_submissions=self.retry_submissions,
            track=self.track,
            list_models=self.list_models,
        )
        self.budget = parts.budget
        self._stats, self._sender, self._account = parts.stats, parts.sender, parts.account
        self._retrieve, self._lifecycle = parts.retrieve, parts.lifecycle
        self._submitter, self._batch_parts = parts.submitter, parts.batch
        self._ensure_open = self._lifecycle.ensure_open

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
        """Stop the poller and close the connections. Submissions on the wire are awaited (up
        to ``timeout``) so that none the server accepted goes unrecorded. Every generation still
        pending resolves with ``ClientClosed``, carrying its id: ``track(id)`` elsewhere resumes it.
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
        """Submit one generation; returns its handle once the server accepted it. Validated
        against ``MODELS`` first (``InvalidRequest``, nothing sent); retries reuse one
        ``Idempotency-Key``, so a server that honours it never bills twice."""
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
        request: RequestLike,
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

        ``timeout`` (seconds, > 0) bounds the whole call, the submission included, then raises
        ``GenerationTimeout``. What the server accepted stays tracked: a submission on the wire
        goes on in the client, and its generation, once accepted, is in ``client.pending``.
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
        requests: Iterable[RequestLike],
        *,
        concurrency: int | None = None,
        return_exceptions: Literal[False] = False,
        journal: JournalLike | None = None,
        max_cost: Decimal | None = None,
        fetch_costs: bool = False,
    ) -> list[Video]: ...

    @overload
    async def generate_many(
        self,
        requests: Iterable[RequestLike],
        *,
        concurrency: int | None = None,
        return_exceptions: bool,
        journal: JournalLike | None = None,
        max_cost: Decimal | None = None,
        fetch_costs: bool = False,
    ) -> list[Video | BaseException]: ...

    async def generate_many(
        self,
        requests: Iterable[RequestLike],
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
        journal: JournalLike | None = None,
        max_cost: Decimal | None = None,
        fetch_costs: bool = False,
    ) -> list[Video] | list[Video | BaseException]:
        """Generate all; results in input order: ``list[Video]``, or with ``return_exceptions``
        ``list[Video | BaseException]``.

        :param concurrency: generations in flight at once (None: all, paced by the budget).
        :param return_exceptions: put each failure in its place instead of raising the first.
            When raising, no further request is submitted and the accepted generations stay
            tracked (``client.pending``; their ids are in the error's notes).
        :param journal: a ``Journal`` or a path: resume after a crash without paying twice.
        :param max_cost: US dollars; nothing more is submitted once the spent cost plus the
            estimate of what is in flight would pass it (``CostLimitExceeded``).
        :param fetch_costs: fill in ``Video.cost`` from the billing record where the status
            answer has none (one low-priority request each; always on with ``max_cost``).
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
        requests: Iterable[RequestLike],
        *,
        concurrency: int | None = None,
        journal: JournalLike | None = None,
        max_cost: Decimal | None = None,
        fetch_costs: bool = False,
    ) -> AsCompleted:
        """Finished handles in completion order, while submissions go on:
        ``async with client.as_completed(reqs) as results: async for handle in results``.
        Leaving the block early stops further submissions and waits for the submitter (it runs
        in the client's background tasks, between the caller's steps).
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
        return self._lifecycle.track(generation_id, model)

    # -- status and costs --------------------------------------------------------------------

    async def retrieve(self, generation_id: str) -> GenerationStatus:
        """One status request (retried if transient), no polling."""
        await self._ensure_open()
        return await self._retrieve(generation_id)

    async def billing(self, generation: Video | str) -> BillingRecord:
        """The billing record of a finished generation (``GET /v1/generation?id=``): its
        ``cost`` is recorded once the task completes, where a status answer may lack it. A
        record not there yet (404) is asked for again a couple of times, then ``NotFoundError``.
        Batches that need costs (``max_cost``, ``fetch_costs``) do this themselves.
        """
        generation_id = generation_id_of(generation)
        await self._ensure_open()
        return await self._account.billing(generation_id)

    # -- downloads and the account -----------------------------------------------------------

    async def download(
        self,
        video_or_url: Video | str,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
    ) -> Path:
        """Save a video; returns its path: ``<id>.mp4`` (sanitized) in ``dest`` if it is a
        folder (existing, or ending with a separator), else ``dest`` itself, kept if it exists
        unless ``overwrite``. Streamed beside the target, its ``Content-Length`` checked, then
        renamed: a failed download leaves no file. Retried if transient; the API key never
        goes to the media host. Not paced by the request budget: the API's limits count API
        requests, and videos come from the CDN.
        """
        await self._ensure_open()
        return await save_video(self._sender.download, video_or_url, dest, overwrite=overwrite)

    async def list_models(self) -> list[RemoteModel]:
        """The live catalogue of models this API key may call (``GET /v1/models``)."""
        await self._ensure_open()
        return await self._account.models()

    async def key_info(self) -> KeyInfo:
        """The API key's balance and limits (``GET /v1/key/info``)."""
        await self._ensure_open()
        return await self._account.key_info()
