"""HTTP I/O behind one small interface, and the one place aiohttp's exceptions become ours.

The client holds policy (retries, budget, schedule); a transport only sends one request and
returns the whole answer. Anything with ``send`` and ``aclose`` will do, for instance to put a
proxy or a recorder in between.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Literal, NamedTuple, Protocol

import aiohttp
import anyio

from ._deadlines import Deadlines
from ._exceptions import (
    APIConnectError,
    APIConnectionError,
    APIConnectTimeout,
    APITimeoutError,
    ChuiziError,
    InvalidRequest,
    ResponseFormatError,
)
from ._urls import URLCache, redact

__all__ = [
    "DEFAULT_TIMEOUT",
    "EXCEPTION_MAP",
    "MAX_BODY_BYTES",
    "NO_HEADERS",
    "REQUEST_ID_HEADER",
    "AiohttpTransport",
    "Request",
    "Response",
    "Transport",
    "client_timeout",
    "map_exceptions",
    "pool_size",
]

logger = logging.getLogger("chuizi_async")

MAX_BODY_BYTES = 1024 * 1024
DEFAULT_TIMEOUT = 10.0
"""Seconds one API request may take: the API answers a submission at once, a status is small."""
REQUEST_ID_HEADER = "X-Request-Id"


NO_HEADERS: Mapping[str, str] = MappingProxyType({})
"""No headers (a ``Request``'s default; the send path's when a call adds none)."""


class Request(NamedTuple):
    """One HTTP request (its fields by keyword or in this order, as httpx's ``Request``).
    ``headers`` may hold the key: it is kept out of the repr.

    ``timeout``: seconds for the whole request (connection, sending, the answer); for a
    download, the longest silence while the body streams (a large video may take longer).
    ``math.inf``: no timer here, the caller bounds the request (the poller's status checks,
    which its watchdog abandons sooner than any per-request timeout would).

    A ``NamedTuple``, frozen like the other values: one is made for every request, and a
    tuple costs half of a frozen attrs class to make (aiohttp's per-request ``RequestInfo``
    is one for the same reason). ``request._replace(url=...)`` makes a changed copy.
    """

    method: str
    url: str
    headers: Mapping[str, str] = NO_HEADERS
    content: bytes | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __repr__(self) -> str:
        return f"Request(method={self.method!r}, url={self.url!r}, timeout={self.timeout!r})"


class Response(NamedTuple):
    """A whole answer, body read (its fields by keyword or in this order, as httpx's
    ``Response``). ``request_id``: the ``X-Request-Id`` the request carried. A
    ``NamedTuple``, as ``Request``; headers and body are kept out of the repr."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str = ""
    request_id: str | None = None

    def __repr__(self) -> str:
        return f"Response(status={self.status!r}, url={self.url!r}, request_id={self.request_id!r})"


class Transport(Protocol):
    """What the client needs of the network.

    A transport may also say how many requests it sends at once: an attribute
    ``max_connections`` (an int, or None for no limit; see ``pool_size``). A batch has as
    many submissions on the wire at once.
    """

    async def send(self, request: Request) -> Response:
        """Send one request; the whole answer (capped), or ``APIConnectionError``.

        Raise ``APIConnectError`` only when nothing was sent (no connection was made): with
        ``retry_submissions="safe"`` a submission is then sent again, any other error makes it
        ``SubmissionUncertain``.
        """
        ...

    async def download(self, request: Request, path: Path) -> Response:
        """Like ``send``, but a 200 answer's body is streamed into ``path`` (not returned)."""
        ...

    async def aclose(self) -> None: ...


def pool_size(transport: object) -> int | None:
    """How many requests ``transport`` sends at once: its ``max_connections``, or None when it
    has no limit or does not say."""
    size = getattr(transport, "max_connections", None)
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 1 else None


# The most specific source class wins: ``map_exceptions`` walks the raised type's MRO.
# ``APIConnectError``: nothing was sent (a POST may go again); the others may come after the
# request went out (a POST may have created a generation). A connect or pool timeout is told
# apart from the total timeout by ``connect_timeout``.
EXCEPTION_MAP: Mapping[type[BaseException], type[ChuiziError]] = {
    aiohttp.ServerTimeoutError: APITimeoutError,
    aiohttp.ConnectionTimeoutError: APIConnectTimeout,
    aiohttp.SocketTimeoutError: APITimeoutError,
    TimeoutError: APITimeoutError,
    aiohttp.InvalidURL: InvalidRequest,
    aiohttp.ClientConnectorError: APIConnectError,
    aiohttp.ServerDisconnectedError: APIConnectionError,
    aiohttp.ClientPayloadError: APIConnectionError,
    aiohttp.ClientOSError: APIConnectionError,
    aiohttp.ClientError: APIConnectionError,
    OSError: APIConnectionError,
}

_MESSAGES: Mapping[type[BaseException], str] = {
    aiohttp.ClientConnectorError: "could not connect to the server",
    aiohttp.ServerDisconnectedError: "the server closed the connection without an answer",
    aiohttp.ClientPayloadError: "the answer was cut short",
    aiohttp.ServerTimeoutError: "the server did not answer in time",
    aiohttp.ConnectionTimeoutError: "timed out connecting to the server",
    aiohttp.SocketTimeoutError: "the server did not answer in time",
    TimeoutError: "the server did not answer in time",
}


def _mapped(exc: BaseException) -> ChuiziError | None:
    for cls in type(exc).__mro__:
        target = EXCEPTION_MAP.get(cls)
        if target is not None:
            reason = _MESSAGES.get(cls) or str(exc) or type(exc).__name__
            return target(f"{reason} ({type(exc).__name__})")
    return None


def connect_timeout(total: float) -> float:
    """The time allowed to get a connection (new or pooled) within a ``total`` timeout.

    A little less than the total, so that one not had in time raises aiohttp's
    ``ConnectionTimeoutError`` (nothing was sent) before the total timeout fires, which
    cannot say whether the request went out. Above 5 s aiohttp rounds its connect timeout up
    to a whole second: a second less keeps it before the total (``Deadlines``', unrounded).
    """
    return total * 0.9 if total <= 5.0 else total - 1.0


def client_timeout(seconds: float, *, stream: bool) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for a request of ``seconds``: the connection a little sooner; a
    streamed body with no silence that long. An API answer's total is not aiohttp's but the
    transport's ``Deadlines`` (one timer for every request, not one each).

    ``math.inf``: none at all (the caller bounds the request: the poller's watchdog)."""
    if seconds == math.inf:
        return aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)
    connect = connect_timeout(seconds)
    if stream:
        return aiohttp.ClientTimeout(total=None, connect=connect, sock_read=seconds)
    return aiohttp.ClientTimeout(total=None, connect=connect)


class map_exceptions:  # lower case: used as ``with map_exceptions(url):``, like a function
    """Re-raise aiohttp and OS errors as ``APIConnectionError`` / ``APITimeoutError``.

    A class, not a generator-based context manager: it wraps every request.
    """

    __slots__ = ("_url",)

    def __init__(self, url: str) -> None:
        self._url = url

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is None or isinstance(exc, (ChuiziError, asyncio.CancelledError)):
            return False
        if not isinstance(exc, Exception):
            return False
        mapped = _mapped(exc)
        if mapped is None:
            return False
        mapped.args = (f"{mapped.args[0]} [{redact(self._url)}]",)
        raise mapped from exc


_NO_DEADLINE: AbstractContextManager[object] = nullcontext()  # a request its caller bounds


class AiohttpTransport:
    """One ``aiohttp.ClientSession`` with a keep-alive pool of ``max_connections``."""

    def __init__(self, *, max_connections: int = 64, max_body: int = MAX_BODY_BYTES) -> None:
        self._max_connections = max_connections
        self._max_body = max_body
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float, bool], aiohttp.ClientTimeout] = {}
        self._deadlines = Deadlines()
        self._urls = URLCache()

    @property
    def max_connections(self) -> int:
        """The size of the connection pool: requests sent at once (see ``pool_size``)."""
        return self._max_connections

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=True, trust_env=False
            )
        return self._session

    async def send(self, request: Request) -> Response:
        debug = logger.isEnabledFor(logging.DEBUG)
        request_id = request.headers.get(REQUEST_ID_HEADER)
        if debug:
            logger.debug("-> %s %s [%s]", request.method, redact(request.url), request_id)
        seconds = request.timeout
        deadline = self._deadlines.start(seconds) if seconds < math.inf else _NO_DEADLINE
        try:  # map_exceptions, inlined: this runs for every request
            with deadline:  # a TimeoutError once past it
                async with self._open(request) as resp:
                    if self._fits(resp):
                        content = await resp.read()
                    else:
                        content = await self._read_capped(resp, request.url)
                    status, headers = resp.status, resp.headers
        except (ChuiziError, asyncio.CancelledError):
            raise
        except Exception:
            with map_exceptions(request.url):
                raise
        if debug:
            echo = headers.get(REQUEST_ID_HEADER) or request_id
            logger.debug(
                "<- %s %s (%d bytes) [%s]", status, redact(request.url), len(content), echo
            )
        return Response(status, headers, content, request.url, request_id)

    def _open(
        self, request: Request, *, stream: bool = False
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        timeout = self._timeouts.get((request.timeout, stream))
        if timeout is None:
            timeout = self._timeouts[request.timeout, stream] = client_timeout(
                request.timeout, stream=stream
            )
        return self._get_session().request(
            request.method,
            self._urls.get(request.url),
            headers=request.headers,
            data=request.content,
            timeout=timeout,
            allow_redirects=False,
        )

    def _fits(self, resp: aiohttp.ClientResponse) -> bool:
        """Whether the declared length is within the limit and the body is not inflated after."""
        declared = resp.content_length
        return (
            declared is not None
            and declared <= self._max_body
            and resp.headers.get("Content-Encoding", "identity") == "identity"
        )

    async def _read_capped(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        declared = resp.content_length
        if declared is not None and declared > self._max_body:
            raise ResponseFormatError(
                f"answer of {declared} bytes refused: over the {self._max_body}-byte limit "
                f"[{redact(url)}]"
            )
        if self._fits(resp):
            return await resp.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_body:
                raise ResponseFormatError(
                    f"answer refused: over the {self._max_body}-byte limit [{redact(url)}]"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def download(self, request: Request, path: Path) -> Response:
        logger.debug("-> %s %s (download)", request.method, redact(request.url))
        with map_exceptions(request.url):
            async with self._open(request, stream=True) as resp:
                if resp.status != 200:
                    content = await self._read_capped(resp, request.url)
                    return Response(
                        status=resp.status, headers=resp.headers, content=content, url=request.url
                    )
                size = await _stream_to(resp, path)
                expected = resp.content_length
                if expected is not None and size != expected:
                    raise APIConnectionError(
                        f"download cut short: {size} of {expected} bytes [{redact(request.url)}]"
                    )
                headers = resp.headers
        logger.debug("<- 200 %s (%d bytes to %s)", redact(request.url), size, path.name)
        return Response(status=200, headers=headers, content=b"", url=request.url)

    async def aclose(self) -> None:
        """Close the session; a later request opens a new one (in the running event loop)."""
        self._deadlines.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def _stream_to(resp: aiohttp.ClientResponse, path: Path) -> int:
    """Write the body to ``path`` in chunks and fsync it; the number of bytes written."""
    size = 0
    with path.open("wb") as file:
        async for chunk in resp.content.iter_chunked(256 * 1024):
            file.write(chunk)
            size += len(chunk)
        file.flush()
        await anyio.to_thread.run_sync(os.fsync, file.fileno())
    return size
