"""Shared fixtures: a fast simulator and clients whose clocks are compressed to match it."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Self

import pytest
import pytest_asyncio
from aiohttp import web

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi
from chuizi_async.testing._realism import REALISMS, Realism

SPEED = 1000.0
"""Simulator time compression: a 45 s generation takes 45 ms."""

ClientFactory = Callable[..., ca.Client]


@pytest.fixture
def realism(request: pytest.FixtureRequest) -> Realism:
    """The simulator's realism: "kind", or both in modules marked ``both_realisms``."""
    return getattr(request, "param", "kind")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_realisms`` that use the simulator run against its harsh preset too."""
    if "realism" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_realisms"
    ):
        metafunc.parametrize("realism", REALISMS, indirect=True)


@pytest_asyncio.fixture
async def server(realism: Realism) -> AsyncIterator[FakeChuizi]:
    async with FakeChuizi(speed=SPEED, seed=7, realism=realism) as sim:
        yield sim


@pytest_asyncio.fixture
async def make_client(server: FakeChuizi) -> AsyncIterator[ClientFactory]:
    """Clients of ``server`` (closed at the end of the test); keyword overrides allowed."""
    clients: list[ca.Client] = []

    def factory(**kwargs: Any) -> ca.Client:
        sim = kwargs.pop("sim", server)
        kwargs.setdefault("time_scale", SPEED)  # the client's clock: the simulator's
        kwargs.setdefault("base_url", sim.base_url)
        client = ca.Client(kwargs.pop("api_key", sim.api_key), **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest_asyncio.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[ca.Client]:
    async with make_client() as c:
        yield c


@pytest.fixture(autouse=True)
def _no_environment_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHUIZI_API_KEY", raising=False)
    monkeypatch.delenv("CHUIZI_BASE_URL", raising=False)


async def wait_until(predicate: Callable[[], object], timeout: float = 2.0) -> None:
    """Wait for the simulator to reach a state (it offers no events to wait on)."""
    import anyio

    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - polling another party's state
            await anyio.sleep(0.005)


class _AsyncioErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(autouse=True)
def _no_asyncio_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test after which asyncio logged an error ("Task was destroyed but it is pending",
    "Future exception was never retrieved"): those are logged, not warned."""
    handler = _AsyncioErrors()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
        if request.node.get_closest_marker("asyncio") is not None:
            gc.collect()
    finally:
        logger.removeHandler(handler)
    assert not handler.messages, handler.messages


class Loopback:
    """A small aiohttp.web server on 127.0.0.1 (a random port) that gives every request to
    ``handle``: a stand-in for an API, a media host or another origin, as a test needs."""

    base_url = ""
    _runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        # a handler held open by a test must not hold the cleanup
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


class Recorder(Loopback):
    """A loopback server that records the headers it gets and, when ``redirect_to`` is set,
    redirects every request there (path and query kept) with ``redirect``."""

    redirect: type[web.HTTPMove] = web.HTTPTemporaryRedirect

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.redirect_to: str | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        if self.redirect_to is not None:
            raise self.redirect(self.redirect_to + request.path_qs)
        return await self.answer(request)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"object": "list", "data": [{"id": "google/veo-3.1"}]})
