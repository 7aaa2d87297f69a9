"""The one place aiohttp's exceptions become ours, and the aiohttp transport on loopback."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import anyio
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey

import chuizi_async as ca
from chuizi_async._transport import (
    DEFAULT_TIMEOUT,
    EXCEPTION_MAP,
    MAX_BODY_BYTES,
    client_timeout,
    connect_timeout,
    map_exceptions,
)

URL = "https://api.chuizi.ai/v1/generation?id=gen-0123456789abcdef"


def connection_key() -> ConnectionKey:
    return ConnectionKey(
        host="api.chuizi.ai",
        port=443,
        is_ssl=True,
        ssl=True,
        proxy=None,
        proxy_auth=None,
        proxy_headers_hash=None,
        server_hostname=None,
    )


def instance_of(cls: type[BaseException]) -> BaseException:
    """A realistic instance of each source class of the map."""
    if cls is aiohttp.ClientConnectorError:
        return aiohttp.ClientConnectorError(
            connection_key(), ConnectionRefusedError(111, "Connection refused")
        )
    if cls is aiohttp.InvalidURL:
        return aiohttp.InvalidURL("http//broken", "no scheme")
    if cls is aiohttp.ServerDisconnectedError:
        return aiohttp.ServerDisconnectedError()
    if cls is aiohttp.ClientPayloadError:
        return aiohttp.ClientPayloadError("Response payload is not completed")
    if cls is aiohttp.ClientOSError:
        return aiohttp.ClientOSError(104, "Connection reset by peer")
    if cls is OSError:
        return OSError(101, "Network is unreachable")
    return cls("boom")


def raise_mapped(exc: BaseException) -> BaseException:
    with pytest.raises(BaseException) as info, map_exceptions(URL):
        raise exc
    return info.value


SOURCES = list(EXCEPTION_MAP)


def test_the_map_covers_the_documented_sources() -> None:
    assert {
        aiohttp.ServerTimeoutError,
        aiohttp.ConnectionTimeoutError,
        aiohttp.SocketTimeoutError,
        TimeoutError,
        aiohttp.ClientConnectorError,
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientPayloadError,
        aiohttp.ClientOSError,
        aiohttp.ClientError,
        OSError,
    } <= set(SOURCES)


@pytest.mark.parametrize("source", SOURCES, ids=lambda c: c.__name__)
def test_every_source_maps_to_its_target_and_is_chained(source: type[BaseException]) -> None:
    original = instance_of(source)
    assert type(original) is source
    mapped = raise_mapped(original)
    assert type(mapped) is EXCEPTION_MAP[source]
    assert mapped.__cause__ is original


@pytest.mark.parametrize("source", SOURCES, ids=lambda c: c.__name__)
def test_mapped_message_names_the_source_and_hides_the_query(source: type[BaseException]) -> None:
    mapped = raise_mapped(instance_of(source))
    message = str(mapped)
    assert source.__name__ in message
    assert "https://api.chuizi.ai/v1/generation" in message
    assert "gen-0123456789abcdef" not in message


def test_server_timeout_is_a_timeout_not_a_plain_connection_error() -> None:
    mapped = raise_mapped(aiohttp.ServerTimeoutError("read timed out"))
    assert type(mapped) is ca.APITimeoutError
    assert isinstance(mapped, TimeoutError)


@pytest.mark.parametrize("source", [aiohttp.ConnectionTimeoutError, aiohttp.SocketTimeoutError])
def test_connect_and_socket_timeouts_are_timeouts(source: type[Exception]) -> None:
    assert isinstance(raise_mapped(source("slow")), ca.APITimeoutError)


def test_a_connect_timeout_says_nothing_was_sent() -> None:
    mapped = raise_mapped(aiohttp.ConnectionTimeoutError("slow"))
    assert type(mapped) is ca.APIConnectTimeout
    assert isinstance(mapped, ca.APIConnectError)


def test_a_read_timeout_does_not_say_nothing_was_sent() -> None:
    mapped = raise_mapped(aiohttp.SocketTimeoutError("slow"))
    assert type(mapped) is ca.APITimeoutError
    assert not isinstance(mapped, ca.APIConnectError)


def _connector(cls: type[aiohttp.ClientConnectorError]) -> BaseException:
    if cls is aiohttp.ClientConnectorCertificateError:
        return cls(connection_key(), ValueError("certificate verify failed"))
    return cls(connection_key(), OSError(111, "Connection refused"))


@pytest.mark.parametrize(
    ("error", "target"),
    [
        (_connector(aiohttp.ClientConnectorError), ca.APIConnectError),
        (_connector(aiohttp.ClientConnectorDNSError), ca.APIConnectError),
        (_connector(aiohttp.ClientConnectorCertificateError), ca.APIConnectError),
        (_connector(aiohttp.ClientSSLError), ca.APIConnectError),
        (aiohttp.ConnectionTimeoutError("pool or connect"), ca.APIConnectTimeout),
        (aiohttp.ServerDisconnectedError(), ca.APIConnectionError),
        (aiohttp.ClientPayloadError("cut short"), ca.APIConnectionError),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), ca.APIConnectionError),
        (aiohttp.ClientConnectionResetError("closing transport"), ca.APIConnectionError),
        (aiohttp.SocketTimeoutError("read"), ca.APITimeoutError),
        (TimeoutError(), ca.APITimeoutError),
        (OSError(101, "Network is unreachable"), ca.APIConnectionError),
    ],
    ids=lambda x: type(x).__name__ if isinstance(x, BaseException) else x.__name__,
)
def test_only_errors_of_getting_a_connection_say_nothing_was_sent(
    error: BaseException, target: type[ca.ChuiziError]
) -> None:
    mapped = raise_mapped(error)
    assert type(mapped) is target
    nothing_sent = target in (ca.APIConnectError, ca.APIConnectTimeout)
    assert isinstance(mapped, ca.APIConnectError) is nothing_sent


@pytest.mark.parametrize("total", [0.05, 0.2, 1.0, 4.9, 5.0, 5.5, 7.0, 60.0, 600.0])
def test_the_connect_timeout_fires_before_the_total_one(total: float) -> None:
    connect = connect_timeout(total)
    assert 0 < connect < total
    if total > 5.0:  # aiohttp rounds both up to whole seconds: they stay a second apart
        assert total - connect >= 1.0


def test_server_disconnected_is_a_connection_error_not_a_timeout() -> None:
    mapped = raise_mapped(aiohttp.ServerDisconnectedError())
    assert type(mapped) is ca.APIConnectionError
    assert not isinstance(mapped, TimeoutError)


def test_dns_failure_is_a_connection_error_not_a_timeout() -> None:
    dns = aiohttp.ClientConnectorDNSError(
        connection_key(), OSError(-2, "Name or service not known")
    )
    mapped = raise_mapped(dns)
    assert type(mapped) is ca.APIConnectError
    assert mapped.__cause__ is dns


def test_an_unlisted_subclass_maps_by_its_nearest_source() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    assert type(raise_mapped(refused)) is ca.APIConnectionError
    reset = aiohttp.ClientConnectionResetError("Cannot write to closing transport")
    assert type(raise_mapped(reset)) is ca.APIConnectionError


def test_invalid_url_is_an_invalid_request() -> None:
    mapped = raise_mapped(aiohttp.InvalidURL("http//broken"))
    assert type(mapped) is ca.InvalidRequest
    assert isinstance(mapped, ValueError)


def test_cancellation_passes_through_untouched() -> None:
    cancelled = asyncio.CancelledError()
    assert raise_mapped(cancelled) is cancelled


@pytest.mark.parametrize(
    "error",
    [ca.ResponseFormatError("too big"), ca.APITimeoutError("slow"), ca.RateLimitError(429, "x")],
    ids=lambda e: type(e).__name__,
)
def test_our_own_errors_pass_through_untouched(error: ca.ChuiziError) -> None:
    passed = raise_mapped(error)
    assert passed is error
    assert passed.__cause__ is None


def test_unrelated_exceptions_are_not_mapped() -> None:
    error = KeyError("bug")
    assert raise_mapped(error) is error


def test_nothing_raised_means_nothing_mapped() -> None:
    with map_exceptions(URL):
        value = 1
    assert value == 1


def test_request_repr_does_not_show_headers_or_body() -> None:
    key = "ck-" + "a1" * 16
    request = ca.Request(
        method="POST",
        url="https://api.chuizi.ai/v1/videos/generations",
        headers={"Authorization": f"Bearer {key}", "x-api-key": key},
        content=b'{"prompt": "secret plans"}',
    )
    text = repr(request)
    assert "POST" in text
    assert "videos/generations" in text
    assert key not in text
    assert "Authorization" not in text
    assert "secret plans" not in text


def test_response_repr_does_not_show_headers_or_body() -> None:
    key = "ck-" + "b2" * 16
    response = ca.Response(200, {"Set-Cookie": key}, b'{"echo": "%s"}' % key.encode(), "u", "req_1")
    text = repr(response)
    assert "200" in text and "req_1" in text
    assert key not in text and "Set-Cookie" not in text


def test_requests_and_responses_are_frozen_values_by_keyword_or_position() -> None:
    by_position = ca.Request("GET", "https://api.chuizi.ai/v1/models", {"A": "1"}, None, 5.0)
    by_keyword = ca.Request(method="GET", url="https://api.chuizi.ai/v1/models", headers={"A": "1"})
    assert by_keyword == by_position._replace(timeout=DEFAULT_TIMEOUT)
    assert (by_position.method, by_position.timeout) == ("GET", 5.0)
    with pytest.raises(AttributeError):
        by_position.url = "https://elsewhere.example/"  # type: ignore[misc]
    bare = ca.Request("GET", "https://api.chuizi.ai/v1/models")
    assert dict(bare.headers) == {} and bare.content is None
    with pytest.raises(TypeError):
        bare.headers["Authorization"] = "Bearer x"  # type: ignore[index]
    response = ca.Response(status=404, headers={}, content=b"")
    assert (response.url, response.request_id) == ("", None)
    assert response._replace(request_id="req_2").request_id == "req_2"


# -- AiohttpTransport against a real server on loopback ------------------------------------

Serve = Callable[[web.Application], Awaitable[str]]


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start apps on 127.0.0.1 with an ephemeral port; returns their base URL."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest_asyncio.fixture
async def transport() -> AsyncIterator[ca.AiohttpTransport]:
    t = ca.AiohttpTransport()
    yield t
    await t.aclose()


def body_app(size: int, *, chunked: bool) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=b"x" * size, content_type="application/json")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, size, 64 * 1024):
            await response.write(b"x" * min(64 * 1024, size - start))
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/body", handler)
    return app


async def test_transport_returns_status_headers_and_body(
    serve: Serve, transport: ca.AiohttpTransport
) -> None:
    seen: dict[str, str] = {}

    async def handler(request: web.Request) -> web.Response:
        seen.update(request.headers)
        seen["body"] = (await request.read()).decode()
        return web.json_response({"ok": True}, status=201, headers={"X-Thing": "1"})

    app = web.Application()
    app.router.add_post("/echo", handler)
    base = await serve(app)
    response = await transport.send(
        ca.Request(
            method="POST",
            url=f"{base}/echo",
            headers={"Authorization": "Bearer ck-test"},
            content=b'{"a": 1}',
        )
    )
    assert response.status == 201
    assert response.headers["X-Thing"] == "1"
    assert response.content == b'{"ok": true}'
    assert response.url == f"{base}/echo"
    assert seen["Authorization"] == "Bearer ck-test"
    assert seen["body"] == '{"a": 1}'


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_the_limit_is_refused(
    serve: Serve, transport: ca.AiohttpTransport, chunked: bool
) -> None:
    base = await serve(body_app(MAX_BODY_BYTES + 1, chunked=chunked))
    with pytest.raises(ca.ResponseFormatError, match="limit"):
        await transport.send(ca.Request(method="GET", url=f"{base}/body", timeout=10))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_at_the_limit_is_accepted(
    serve: Serve, transport: ca.AiohttpTransport, chunked: bool
) -> None:
    base = await serve(body_app(MAX_BODY_BYTES, chunked=chunked))
    response = await transport.send(ca.Request(method="GET", url=f"{base}/body", timeout=10))
    assert len(response.content) == MAX_BODY_BYTES


async def test_a_smaller_max_body_is_honoured(serve: Serve) -> None:
    base = await serve(body_app(2000, chunked=True))
    small = ca.AiohttpTransport(max_body=1000)
    try:
        with pytest.raises(ca.ResponseFormatError):
            await small.send(ca.Request(method="GET", url=f"{base}/body", timeout=10))
    finally:
        await small.aclose()


async def test_connection_refused_is_a_connection_error(transport: ca.AiohttpTransport) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on the port any more
    with pytest.raises(ca.APIConnectionError) as info:
        await transport.send(ca.Request(method="GET", url=f"http://127.0.0.1:{port}/v1/models"))
    assert not isinstance(info.value, TimeoutError)
    assert type(info.value) is ca.APIConnectError
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)


async def _answered_once_released(serve: Serve, path: str) -> tuple[str, asyncio.Event]:
    """A server whose ``path`` answers ``{"ok": true}`` once the event is set; its base URL."""
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get(path, handler)
    return await serve(app), release


async def test_slow_answer_past_the_timeout_is_a_timeout(
    serve: Serve, transport: ca.AiohttpTransport
) -> None:
    base, release = await _answered_once_released(serve, "/slow")
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(ca.APITimeoutError) as info:
            await transport.send(ca.Request(method="GET", url=f"{base}/slow", timeout=0.2))
    finally:
        release.set()
    elapsed = loop.time() - started
    assert 0.15 <= elapsed < 5.0
    assert isinstance(info.value, TimeoutError)
    assert not isinstance(info.value, ca.APIConnectError)  # the request went out
    assert info.value.__cause__ is not None


async def test_a_request_without_a_timeout_is_answered_however_late_or_given_up_by_its_caller(
    serve: Serve, transport: ca.AiohttpTransport
) -> None:
    base, release = await _answered_once_released(serve, "/late")
    unbounded = ca.Request(method="GET", url=f"{base}/late", timeout=math.inf)
    with anyio.move_on_after(0.3) as scope:  # the caller's own bound (the poller's watchdog)
        await transport.send(unbounded)
    assert scope.cancelled_caught
    asyncio.get_running_loop().call_later(0.3, release.set)
    response = await transport.send(unbounded)  # answered after 0.3 s: no timer gave up
    assert response.status == 200 and json.loads(response.content) == {"ok": True}


async def test_waiting_past_the_timeout_for_a_pooled_connection_says_nothing_was_sent(
    serve: Serve,
) -> None:
    release = asyncio.Event()
    arrived: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        arrived.append(request.path)
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{name}", handler)
    base = await serve(app)
    one = ca.AiohttpTransport(max_connections=1)
    try:
        first = asyncio.ensure_future(
            one.send(ca.Request(method="POST", url=f"{base}/first", content=b"{}", timeout=10))
        )
        while not arrived:  # noqa: ASYNC110 - waiting for the server to hold the connection
            await asyncio.sleep(0.005)
        with pytest.raises(ca.APIConnectTimeout):
            await one.send(
                ca.Request(method="POST", url=f"{base}/second", content=b"{}", timeout=0.2)
            )
        release.set()
        assert (await first).status == 200
    finally:
        release.set()
        await one.aclose()
    assert arrived == ["/first"]


async def test_server_dropping_the_connection_is_a_connection_error(
    serve: Serve, transport: ca.AiohttpTransport
) -> None:
    async def handler(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    app = web.Application()
    app.router.add_get("/drop", handler)
    base = await serve(app)
    with pytest.raises(ca.APIConnectionError) as info:
        await transport.send(ca.Request(method="GET", url=f"{base}/drop"))
    assert not isinstance(info.value, TimeoutError)
    assert not isinstance(info.value, ca.APIConnectError)  # the request went out


async def test_transport_can_send_again_after_aclose(
    serve: Serve, transport: ca.AiohttpTransport
) -> None:
    base = await serve(body_app(10, chunked=False))
    first = await transport.send(ca.Request(method="GET", url=f"{base}/body"))
    await transport.aclose()
    second = await transport.send(ca.Request(method="GET", url=f"{base}/body"))
    assert first.content == second.content == b"x" * 10


def trickle_app(chunks: int, pause: float, *, stall: bool = False) -> web.Application:
    """Streams ``chunks`` of 1 KiB, ``pause`` seconds apart; with ``stall``, then nothing."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(chunks):
            await response.write(b"v" * 1024)
            await asyncio.sleep(pause)
        if stall:
            await asyncio.Event().wait()
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/video.mp4", handler)
    return app


async def test_a_download_longer_than_the_timeout_completes_while_bytes_flow(
    serve: Serve, transport: ca.AiohttpTransport, tmp_path: Path
) -> None:
    base = await serve(trickle_app(8, 0.1))  # 0.8 s in all, never silent for 0.3 s
    target = tmp_path / "video.mp4"
    request = ca.Request(method="GET", url=f"{base}/video.mp4", timeout=0.3)
    response = await transport.download(request, target)
    assert response.status == 200
    assert target.stat().st_size == 8 * 1024


async def test_a_download_silent_past_the_timeout_is_a_timeout(
    serve: Serve, transport: ca.AiohttpTransport, tmp_path: Path
) -> None:
    base = await serve(trickle_app(1, 0.0, stall=True))
    request = ca.Request(method="GET", url=f"{base}/video.mp4", timeout=0.3)
    with pytest.raises(ca.APITimeoutError):
        await transport.download(request, tmp_path / "video.mp4")


def test_an_api_requests_connection_is_bounded_sooner_and_its_total_by_the_transport() -> None:
    timeout = client_timeout(10.0, stream=False)
    assert timeout.total is None  # the transport's Deadlines: one timer for every request
    assert timeout.connect is not None and timeout.connect < 10.0
    streamed = client_timeout(10.0, stream=True)
    assert streamed.total is None  # a large video may take minutes
    assert streamed.sock_read == 10.0
    unbounded = client_timeout(math.inf, stream=False)  # bounded by its caller: no timer
    assert (unbounded.total, unbounded.connect, unbounded.sock_connect) == (None, None, None)


async def test_each_url_reaches_its_own_route_past_the_url_cache(
    serve: Serve, transport: ca.AiohttpTransport
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path_qs})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    base = await serve(app)
    paths = [f"/v1/videos/gen-{i % 70}" for i in range(140)] + [
        "/v1/generation?id=a",
        "/v1/generation?id=b",
    ]
    for path in paths:
        request = ca.Request("GET", f"{base}{path}", {}, None, 5.0)
        response = await transport.send(request)
        assert json.loads(response.content) == {"path": path}


def test_a_request_and_a_response_take_their_fields_in_order_or_by_name() -> None:
    headers = {"Accept": "application/json"}
    request = ca.Request("GET", URL, headers, None, 5.0)
    assert request == ca.Request(method="GET", url=URL, headers=headers, timeout=5.0)
    response = ca.Response(200, headers, b"{}", URL, "req_1")
    assert response == ca.Response(
        status=200, headers=headers, content=b"{}", url=URL, request_id="req_1"
    )
