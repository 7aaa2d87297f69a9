"""The send path: one API call, from a path and a body to a decoded answer or a typed error.

It reads top-down in the order a request flows, as httpx's ``send`` ->
``_send_handling_auth`` -> ``_send_handling_redirects`` -> ``_send_single_request`` does::

    send                          the URL, the JSON body, the Idempotency-Key, the attempts
    └ _send_handling_retries      the one retry loop: backoff, Retry-After, the cap on timeouts
      └ _send_handling_budget     one attempt: the budget's ticket, the journal's hook,
        │                         X-Request-Id, the headers (AuthHeaders: the key only to
        │                         the API's origin)
        └ Transport.send          the I/O (aiohttp, or a MockTransport); then, only if the
                                  answer is a redirect, _redirected: the next hops

The budget is taken per attempt (a retry's pause holds no ticket) and the key per hop (a
redirect may leave the API's origin), hence this order. ``get_once`` (the poller's status
check, thousands a minute) is one attempt of this path in one frame. ``download`` takes the
same path without the budget (see there) and with ``Transport.download`` at the end.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin

import anyio
import attrs

from ._auth import AuthHeaders
from ._budget import Priority, RequestBudget
from ._download import partial_path
from ._error_rules import is_retryable
from ._exceptions import APIConnectTimeout, APITimeoutError, ChuiziError
from ._responses import decode_json, error_from_response, request_id_note
from ._retries import parse_retry_after, retry_delay, should_retry, silent_too_often
from ._transport import REQUEST_ID_HEADER, Request, Response, Transport, redact

__all__ = ["ClientStats", "Sender", "new_request_id"]

logger = logging.getLogger("chuizi_async")

T = TypeVar("T")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_NO_HEADERS: Mapping[str, str] = {}


def _ignore(response: Response) -> None:
    """A download's 2xx: the file is already in place."""


def new_request_id() -> str:
    """A fresh ``X-Request-Id`` (``req_`` and 16 hex digits), one per attempt."""
    return f"req_{os.urandom(8).hex()}"


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
        on_wire: Callable[[], object] | None = None,
        retry_if: Callable[[ChuiziError], bool] | None = None,
    ) -> Coroutine[Any, Any, object]:
        """One API call, to await: the decoded JSON of a 2xx answer, or a typed error.

        ``retry_if`` decides which errors are retried (default: ``should_retry`` of an error
        status, ``is_retryable`` of a failure without an answer). ``on_wire`` is called (and
        awaited if it returns an awaitable) just before each attempt goes out; ``model_scope``
        (a model) adds the limit the budget learned for it to the client's. A plain
        function returning the retry loop's coroutine: one frame less on every request.
        """
        content = json.dumps(body).encode() if body is not None else None
        extra = {"Idempotency-Key": idempotency_key} if idempotency_key else _NO_HEADERS
        url = f"{self._base_url}{path}"
        once = functools.partial(
            self._send_handling_budget, method, url, content, extra, priority, model_scope, on_wire
        )
        attempts = self.max_retries + 1 if retries else 1
        return self._send_handling_retries(once, decode_json, attempts, method, url, retry_if)

    def get_once(
        self, path: str, accept: Callable[[Any], T], *, priority: Priority
    ) -> Coroutine[Any, Any, T]:
        """One GET, one attempt, to await: ``accept`` of the decoded JSON of a 2xx answer.

        What ``send(..., retries=False)`` does, in one frame for the common case (no
        redirect): the poller's status check, made thousands of times a minute.
        """
        return self._get_once(f"{self._base_url}{path}", accept, priority)

    def download(self, url: str, target: Path) -> Coroutine[Any, Any, None]:
        """Fetch a video into ``target``, to await; retried, redirected, without the key.

        Outside the request budget: the budget paces the API's rate limits, which count
        requests to the API (``api.chuizi.ai``); a video comes from the CDN, another host,
        which those limits do not cover. Streamed into a partial file beside ``target`` and
        renamed on a 200: a failed download leaves no file.
        """
        once = functools.partial(self._download_once, url, target)
        return self._send_handling_retries(
            once, _ignore, self.max_retries + 1, "download", url, None
        )

    async def _send_handling_retries(
        self,
        once: Callable[[], Awaitable[Response]],
        accept: Callable[[Response], T],
        attempts: int,
        method: str,
        url: str,
        retry_if: Callable[[ChuiziError], bool] | None,
    ) -> T:
        """The one retry loop: ``once`` until a 2xx that ``accept`` takes, or a final error.

        At most ``MAX_TIMEOUTS`` attempts may time out: a silent server gets a clear error
        in ``3 x timeout``, not ``max_retries + 1`` times it.
        """
        timeouts = 0
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await once()
                if 200 <= response.status < 300:
                    return accept(response)
                error: ChuiziError = error_from_response(response)
                retry = should_retry(response.status) if retry_if is None else retry_if(error)
                if last or not retry:
                    raise error
                delay = parse_retry_after(response.headers)
            except ChuiziError as exc:
                retry = is_retryable(exc) if retry_if is None else retry_if(exc)
                timeouts += isinstance(exc, APITimeoutError)
                if last or not retry or silent_too_often(exc, timeouts):
                    if isinstance(exc, APITimeoutError):
                        exc.args = (self._no_answer(exc, url, attempt + 1),)
                    raise
                error, delay = exc, None
            if delay is None:
                delay = retry_delay(attempt) / self._time_scale
            self._stats.retries += 1
            logger.debug(
                "retrying %s %s in %.2f s after: %s%s",
                method,
                redact(url),
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

    async def _send_handling_budget(
        self,
        method: str,
        url: str,
        content: bytes | None,
        extra_headers: Mapping[str, str],
        priority: Priority,
        model_scope: str | None,
        on_wire: Callable[[], object] | None,
    ) -> Response:
        """One attempt within the request budget: a ticket held until the answer is in,
        which the budget reads (rate-limit headers, a 429) as it gives the ticket back."""
        budget = self._budget
        ticket = budget.try_acquire(priority, model_scope) or await budget.acquire(
            priority, model_scope
        )
        try:
            if on_wire is not None:
                pending = on_wire()
                if isinstance(pending, Awaitable):  # e.g. a journal's write before it goes out
                    await pending
            self._stats.requests += 1
            # _send_handling_redirects, inlined: a redirect (rare) takes _redirected
            request_id = new_request_id()
            request = self._request(method, url, content, extra_headers, request_id)
            response = await self._transport.send(request)
            if response.status >= 300:
                response = await self._redirected(
                    self._transport.send, request, response, extra_headers, request_id
                )
            budget.observe(ticket, response.status, response.headers)
            return response
        finally:
            budget.release(ticket)

    async def _get_once(self, url: str, accept: Callable[[Any], T], priority: Priority) -> T:
        """``get_once``: the budget's ticket, X-Request-Id, the transport, redirects only if
        the answer is one; the error of a non-2xx answer or of a timeout as ``send`` has it."""
        budget = self._budget
        ticket = budget.try_acquire(priority, None) or await budget.acquire(priority, None)
        try:
            self._stats.requests += 1
            request_id = new_request_id()
            request = self._request("GET", url, None, _NO_HEADERS, request_id)
            response = await self._transport.send(request)
            if response.status >= 300:
                response = await self._redirected(
                    self._transport.send, request, response, _NO_HEADERS, request_id
                )
            budget.observe(ticket, response.status, response.headers)
        except APITimeoutError as exc:
            exc.args = (self._no_answer(exc, url, 1),)
            raise
        finally:
            budget.release(ticket)
        if 200 <= response.status < 300:
            return accept(decode_json(response))
        raise error_from_response(response)

    async def _download_once(self, url: str, target: Path) -> Response:
        part = partial_path(target)
        try:
            response = await self._send_handling_redirects(
                "GET",
                url,
                None,
                _NO_HEADERS,
                functools.partial(self._transport.download, path=part),
            )
            if response.status == 200:
                os.replace(part, target)
            return response
        finally:
            part.unlink(missing_ok=True)

    async def _send_handling_redirects(
        self,
        method: str,
        url: str,
        content: bytes | None,
        extra_headers: Mapping[str, str],
        send: Callable[[Request], Awaitable[Response]],
    ) -> Response:
        """One attempt through ``send``, following redirects: the headers of each hop come
        from ``AuthHeaders`` (the key only to the API's own origin), with one fresh
        ``X-Request-Id`` per attempt."""
        request_id = new_request_id()
        request = self._request(method, url, content, extra_headers, request_id)
        return await self._redirected(send, request, await send(request), extra_headers, request_id)

    def _request(
        self,
        method: str,
        url: str,
        content: bytes | None,
        extra_headers: Mapping[str, str],
        request_id: str,
    ) -> Request:
        headers = self._auth.headers_for(url, has_body=content is not None, request_id=request_id)
        if extra_headers:
            headers.update(extra_headers)
        return Request(
            method=method, url=url, headers=headers, content=content, timeout=self.timeout
        )

    async def _redirected(
        self,
        send: Callable[[Request], Awaitable[Response]],
        request: Request,
        response: Response,
        extra_headers: Mapping[str, str],
        request_id: str,
    ) -> Response:
        """The answer after the redirects that ``response`` (to ``request``) starts, if any,
        each hop with the attempt's ``X-Request-Id``; an error notes the id sent."""
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
            )
            response = await send(request)
        if response.request_id is None and response.status >= 300:
            # an error to report, from a transport that did not note the id: the one we sent
            response = attrs.evolve(response, request_id=request.headers.get(REQUEST_ID_HEADER))
        return response
