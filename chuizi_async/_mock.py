"""A transport that answers from a function of yours: unit tests with no server and no network.

Modelled on httpx's ``MockTransport``; for a faithful server, use ``chuizi_async.testing``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import anyio
from multidict import CIMultiDict, CIMultiDictProxy

from ._transport import REQUEST_ID_HEADER, Request, Response, map_exceptions

__all__ = ["Handler", "MockTransport", "json_response"]

Handler = Callable[[Request], Response | Awaitable[Response]]
"""A sync or async function from a request to its answer."""


def json_response(
    body: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """An answer with ``body`` as JSON (``Content-Type: application/json``), for a handler."""
    all_headers = CIMultiDict({"Content-Type": "application/json"})
    all_headers.update(headers or {})
    return Response(
        status=status, headers=CIMultiDictProxy(all_headers), content=json.dumps(body).encode()
    )


class MockTransport:
    """Answers each request with ``handler(request)``: no connection is ever made.

    ``handler`` (sync or async) returns a ``Response`` (``json_response`` builds one), or
    raises to simulate a failed request: a ``ChuiziError`` as is (``APIConnectError``: nothing
    was sent), an ``OSError`` or aiohttp error mapped as the real transport maps it. Headers
    are case-insensitive both ways, as aiohttp's are. ``requests`` holds every request seen::

        def handler(request: ca.Request) -> ca.Response:
            if request.method == "POST":
                return ca.json_response({"id": "gen-1", "status": "processing"})
            return ca.json_response({"id": "gen-1", "status": "failed", "error": "no"})

        transport = ca.MockTransport(handler)
        async with ca.Client("ck-test", transport=transport) as client:
            generation = await client.submit("google/veo-3.1-fast", "a cat")
        assert transport.requests[0].headers["Idempotency-Key"]

    ``download`` writes a 200 answer's ``content`` to the file, as ``AiohttpTransport`` does.
    Like it, a closed ``MockTransport`` opens again on its next request.
    """

    max_connections: int | None = None
    """No pool: every request at once (a batch then has the client's ``max_connections``)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.closed = False

    async def send(self, request: Request) -> Response:
        self.closed = False
        request = request._replace(headers=CIMultiDictProxy(CIMultiDict(request.headers)))
        self.requests.append(request)
        with map_exceptions(request.url):
            answer = self.handler(request)
            response = await answer if inspect.isawaitable(answer) else answer
        return response._replace(
            headers=CIMultiDictProxy(CIMultiDict(response.headers)),
            url=response.url or request.url,
            request_id=response.request_id or request.headers.get(REQUEST_ID_HEADER),
        )

    async def download(self, request: Request, path: Path) -> Response:
        response = await self.send(request)
        if response.status != 200:
            return response
        await anyio.Path(path).write_bytes(response.content)
        return response._replace(content=b"")

    async def aclose(self) -> None:
        self.closed = True
