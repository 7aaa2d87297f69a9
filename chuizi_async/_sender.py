"""The send path: one API call, from a path and a body to a decoded answer or a typed error.

It reads top-down in the order a request flows, as httpx's ``send`` ->
``_send_handling_auth`` -> ``_send_handling_redirects`` -> ``_send_single_request`` does::

    send / get_once / download    the request: URL, JSON body, Idempotency-Key, the headers
    │                             (AuthHeaders: the key only to the API's origin)
    └ _send_handling_retries      the one retry loop (backoff, Retry-After, the cap on
      │                           timeouts) around the one attempt: the budget's ticket,
      │                           the journal's hook, a fresh X-Request-Id
      └ Transport.send            the I/O (aiohttp, or a MockTransport); then, only if the
                                  answer is a redirect, _redirected: the next hops

The budget is taken per attempt (a retry's pause holds no ticket) and the key per hop (a
redirect may leave the API's origin), hence this order. Every call is one frame above the
transport: the poller's status check (``get_once``, one attempt, thousands a minute) and each
submission alike. ``download`` takes the same path outside the budget (see there), with
``Transport.download`` at the end.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin

import anyio
import attrs

from . import _clock
from ._auth import AuthHeaders
from ._budget import Priority, RequestBudget
from ._download import partial_path
from ._error_rules import is_retryable
from ._exceptions import APIConnectTimeout, APITimeoutError, ChuiziError
from ._ids import new_request_id
from ._responses import decode_json, error_from_response, request_id_note
from ._retries import (
    parse_retry_after,
    retry_delay,
    should_retry,
    silent_too_often,
    waits_out,
)
from ._transport import NO_HEADERS, REQUEST_ID_HEADER, Request, Response, Transport
from ._urls import redact

__all__ = ["ClientStats", "OnWire", "Sender"]

logger = logging.getLogger("chuizi_async")

T = TypeVar("T")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_encoder = json.JSONEncoder()  # json.dumps' own, without its per-call checks of options


def _in_place(part: Path, target: Path, response: Response) -> None:
    """A download's 2xx: on a 200 the partial file becomes ``target``."""
    if response.status == 200:
        os.replace(part, target)


class OnWire(Protocol):
    """What a call tells its caller of the wire: ``__call__()`` just before each attempt goes
    out (an awaitable it returns is awaited first), ``refused()`` when a 429 answered one, so
    that nothing was made and nothing is on the wire until the next attempt."""

    def __call__(self) -> object: ...

    def refused(self) -> None: ...


@attrs.define
class ClientStats:
    """Requests this client made, by kind (a live view; read, don't write)."""

    requests: int = 0
    submissions: int = 0
    status_checks: int = 0
    retries: int = 0
    rate_limited: int = 0


class Sender:
    """Sends API calls through the retries, the budget and the redirects to the transport.

    It holds no task and opens nothing: the client owns the transport's lifecycle. ``stats``
    is the client's, counted here (``requests``, ``retries``).
    """

    __slots__ = (
        "_auth",
        "_base_url",
        "_budget",
        "_stats",
        "_time_scale",
        "_transport",
        "max_retries",
        "timeout",
    )

    def __init__(
        self,
        *,
        auth: AuthHeaders,
        transport: Transport,
        budget: RequestBudget,
        timeout: float,
        max_retries: int,
        time_scale: float,
        stats: ClientStats,
    ) -> None:
        self._auth = auth
        self._base_url = auth.base_url
        self._transport = transport
        self._budget = budget
        self.timeout = timeout
        self.max_retries = max_retries
        self._time_scale = time_scale
        self._stats = stats

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        priority: Priority = Priority.OTHER,
        model_scope: str | None = None,
        idempotency_key: str | None = None,
        retries: bool = True,
        on_wire: OnWire | None = None,
        retry_if: Callable[[ChuiziError], bool] | None = None,
    ) -> Coroutine[Any, Any, object]:
        """One API call, to await: the decoded JSON of a 2xx answer, or a typed error.

        ``retry_if`` decides which errors are retried (default: ``should_retry`` of an error
        status, ``is_retryable`` of a failure without an answer). ``on_wire`` is called (and
        awaited if it returns an awaitable) just before each attempt goes out; ``model_scope``
        (a model) adds the limit the budget learned for it to the client's. A plain
        function returning the retry loop's coroutine: one frame less on every request.
        """
        content = _encoder.encode(body).encode() if body is not None else None
        extra = {"Idempotency-Key": idempotency_key} if idempotency_key else NO_HEADERS
        request = self._request(method, f"{self._base_url}{path}", content, extra)
        attempts = self.max_retries + 1 if retries else 1
        return self._send_handling_retries(
            request, decode_json, attempts, retry_if, priority, model_scope, on_wire, extra
        )

    def get_once(
        self,
        path: str,
        accept: Callable[[Response], T],
        priority: Priority = Priority.POLL,
        *,
        timeout: float | None = None,
    ) -> Coroutine[Any, Any, T]:
        """One GET, one attempt, to await: ``accept`` of a 2xx answer, or a typed error.

        ``send(..., retries=False)`` with the answer left to ``accept`` (which decodes it:
        the poller's status check parses in the same step, thousands of times a minute), at
        the poller's priority unless told otherwise. ``timeout``: the client's unless given
        (``math.inf``: none of the transport's, for a caller that bounds the call itself).
        """
        url = f"{self._base_url}{path}"
        request = self._request("GET", url, None, NO_HEADERS, timeout=timeout)
        return self._send_handling_retries(request, accept, 1, None, priority)

    async def download(self, url: str, target: Path) -> None:
        """Fetch a video into ``target``; retried, redirected, without the key.

        Outside the request budget: the budget paces the API's rate limits, which count
        requests to the API (``api.chuizi.ai``); a video comes from the CDN, another host,
        which those limits do not cover. Streamed into a partial file beside ``target`` and
        renamed on a 200: a failed download leaves no file.
        """
        part = partial_path(target)
        try:
            request = self._request("GET", url, None, NO_HEADERS)
            in_place = functools.partial(_in_place, part, target)
            await self._send_handling_retries(
                request, in_place, self.max_retries + 1, None, download_to=part
            )
        finally:
            part.unlink(missing_ok=True)

    async def _send_handling_retries(
        self,
        request: Request,
        accept: Callable[[Response], T],
        attempts: int,
        retry_if: Callable[[ChuiziError], bool] | None,
        priority: Priority | None = None,
        model_scope: str | None = None,
        on_wire: OnWire | None = None,
        extra_headers: Mapping[str, str] = NO_HEADERS,
        download_to: Path | None = None,
    ) -> T:
        """Up to ``attempts`` attempts of ``request``, until a 2xx that ``accept`` takes, or
        a final error; each attempt with a fresh ``X-Request-Id``.

        An attempt (the one copy of it): the budget's ticket for ``priority`` (None: outside
        the budget), held until the answer is in and read as it is given back; ``on_wire``;
        the transport (``download_to``: streamed into that file); ``_redirected`` only if
        the answer is a redirect. At most ``MAX_TIMEOUTS`` attempts may time out: a silent
        server gets a clear error in ``3 x timeout``, not ``max_retries + 1`` times it. A 429
        spends no attempt for ``RATE_LIMIT_PATIENCE`` after the call's first (a call of one
        attempt, the poller's check, is left to its caller): the budget paces the next.
        """
        budget = self._budget
        transport = self._transport
        timeouts = 0
        attempt = 0  # attempts spent: a 429 waited out spends none
        refused_since = None  # when this call's first 429 came
        for sent in itertools.count():
            if sent:
                request = self._request(
                    request.method,
                    request.url,
                    request.content,
                    extra_headers,
                    timeout=request.timeout,
                )
            waited = False
            try:
                ticket = None
                if priority is not None:
                    ticket = budget.try_acquire(priority, model_scope)
                    if ticket is None:
                        ticket = await budget.acquire(priority, model_scope)
                    self._stats.requests += 1
                try:
                    if on_wire is not None:
                        pending = on_wire()
                        # e.g. a journal's write first (an ABC's isinstance is slow: not on None)
                        if pending is not None and isinstance(pending, Awaitable):
                            await pending
                    if download_to is None:
                        response = await transport.send(request)
                    else:
                        response = await transport.download(request, download_to)
                    status = response.status
                    if status >= 300:
                        response = await self._redirected(
                            request, response, extra_headers, download_to
                        )
                        status = response.status
                    if ticket is not None:
                        budget.observe(ticket, status, response.headers)
                finally:
                    if ticket is not None:
                        budget.release(ticket)
                if 200 <= status < 300:
                    return accept(response)
                error: ChuiziError = error_from_response(response)
                retry = should_retry(status) if retry_if is None else retry_if(error)
                if retry and attempts > 1 and status == 429:
                    at = _clock.now()
                    refused_since = at if refused_since is None else refused_since
                    waited = waits_out(at - refused_since, self._time_scale)
                if (attempt == attempts - 1 and not waited) or not retry:
                    raise error
                if on_wire is not None and status == 429:
                    on_wire.refused()  # nothing was made: off the wire until the next attempt
                delay = parse_retry_after(response.headers)
            except ChuiziError as exc:
                retry = is_retryable(exc) if retry_if is None else retry_if(exc)
                timeouts += isinstance(exc, APITimeoutError)
                if attempt == attempts - 1 or not retry or silent_too_often(exc, timeouts):
                    if isinstance(exc, APITimeoutError):
                        exc.args = (self._no_answer(exc, request.url, attempt + 1),)
                    raise
                error, delay = exc, None
            if delay is None:
                delay = retry_delay(attempt) / self._time_scale
            attempt += not waited
            self._stats.retries += 1
            logger.debug(
                "retrying %s %s in %.2f s after: %s%s",
                request.method,
                redact(request.url),
                delay,
                error,
                request_id_note(error),
            )
            await anyio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _no_answer(self, exc: APITimeoutError, url: str, attempts: int) -> str:
        """What a call that ended in a timeout met: where, how long, how many times."""
        what = "no connection to" if isinstance(exc, APIConnectTimeout) else "no answer from"
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        return f"{what} {redact(url)} within {self.timeout:g} s ({tries})"  # cause: chained

    def _request(
        self,
        method: str,
        url: str,
        content: bytes | None,
        extra_headers: Mapping[str, str],
        request_id: str | None = None,
        *,
        timeout: float | None = None,
    ) -> Request:
        """A request with the headers ``AuthHeaders`` gives ``url``; a fresh ``X-Request-Id``
        unless ``request_id`` (a redirect's hop keeps its attempt's); the client's timeout
        unless ``timeout``."""
        has_body = content is not None
        headers = self._auth.headers_for(url, has_body, request_id or new_request_id())
        if extra_headers:
            headers.update(extra_headers)
        return Request(method, url, headers, content, self.timeout if timeout is None else timeout)

    async def _redirected(
        self,
        request: Request,
        response: Response,
        extra_headers: Mapping[str, str],
        download_to: Path | None,
    ) -> Response:
        """The answer after the redirects that ``response`` (to ``request``) starts, if any,
        each hop with the attempt's ``X-Request-Id``; an error notes the id sent."""
        request_id = request.headers.get(REQUEST_ID_HEADER)
        transport = self._transport
        for _ in range(_MAX_REDIRECTS):
            if response.status not in _REDIRECTS:
                break
            location = response.headers.get("Location")
            if not location:
                break
            method = request.method
            if response.status == 303 or (response.status in (301, 302) and method != "GET"):
                break  # a method change is not ours to make: report the answer as is
            request = self._request(
                method,
                urljoin(request.url, location),
                request.content,
                extra_headers,
                request_id,
                timeout=request.timeout,
            )
            if download_to is None:
                response = await transport.send(request)
            else:
                response = await transport.download(request, download_to)
        if response.request_id is None and response.status >= 300:
            # an error to report, from a transport that did not note the id: the one we sent
            response = response._replace(request_id=request.headers.get(REQUEST_ID_HEADER))
        return response
