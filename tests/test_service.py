"""examples/service.py as a service runs it: many callers, callers who leave, and shutdown."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.util
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi

from .conftest import wait_until


def _load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (the examples are scripts, not a package)."""
    path = Path(__file__).parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"chuizi_examples_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import service as example  # examples/service.py, as mypy sees it
else:
    example = _load_example("service")

SPEED = 100.0
MODEL = "google/veo-3.1-fast"
# Generations finish when a test says so (auto_complete=False); meanwhile the poller checks
# each pending one every 10 s of server time (0.1 s): the default interval, compressed.
POLICY = ca.PollPolicy(first_poll_after=10.0)

HttpClient = TestClient[web.Request, web.Application]
Answer = tuple[int, dict[str, Any]]


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[FakeChuizi]:
    async with FakeChuizi(speed=SPEED, seed=3, auto_complete=False) as server:
        yield server


def _factory(sim: FakeChuizi) -> Callable[[], ca.Client]:
    def make_client() -> ca.Client:
        return ca.Client(sim.api_key, base_url=sim.base_url, poll=POLICY, time_scale=SPEED)

    return make_client


def _http(app: web.Application) -> HttpClient:
    """A test client of ``app`` whose session opens as many connections as there are callers."""
    return TestClient(TestServer(app), connector=aiohttp.TCPConnector(limit=0))


@pytest_asyncio.fixture
async def service(sim: FakeChuizi) -> AsyncIterator[HttpClient]:
    async with _http(example.make_app(_factory(sim))) as http:
        yield http


@contextlib.asynccontextmanager
async def _callers(
    http: HttpClient, prompts: Iterable[str]
) -> AsyncIterator[dict[str, asyncio.Task[Answer]]]:
    """One task per caller, POSTing its prompt; none is left behind, whatever happens."""
    tasks = {p: asyncio.create_task(_post(http, p)) for p in prompts}
    try:
        yield tasks
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


def _client_of(http: HttpClient) -> ca.Client:
    app = http.app
    assert app is not None
    return app[example.CLIENT]


def _ids_by_prompt(sim: FakeChuizi) -> dict[str, str]:
    return {g.prompt: g.id for g in sim.generations.values()}


async def _post(http: HttpClient, prompt: str) -> Answer:
    async with http.post("/videos", json={"model": MODEL, "prompt": prompt}) as resp:
        return resp.status, await resp.json()


def _callers_gone(caplog: pytest.LogCaptureFixture) -> int:
    return sum("caller went away" in r.getMessage() for r in caplog.records)


async def test_callers_who_leave_midway_never_disturb_the_others_and_stay_tracked(
    sim: FakeChuizi, service: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service")
    client = _client_of(service)
    prompts = [f"clip {i}" for i in range(200)]
    leaving = set(prompts[::4])  # a quarter of the callers go away midway
    failing = set(prompts[2::10])  # refused by the content policy, callers who left included

    async with _callers(service, prompts) as tasks:
        # every request reached the server and is tracked; none has finished yet
        await wait_until(lambda: len(client.pending) == len(prompts), timeout=30)
        for prompt in leaving:
            tasks[prompt].cancel()  # the HTTP client closes its connection: the handler goes
        await wait_until(lambda: _callers_gone(caplog) == len(leaving))
        ids = _ids_by_prompt(sim)
        tracked = {h.id: h for h in client.pending}
        assert set(tracked) == set(ids.values())  # those who left were paid for: tracked

        for prompt, generation_id in ids.items():
            if prompt in failing:
                sim.fail(generation_id, message="Content policy violation")
            else:
                sim.complete(generation_id)
        answers = {p: await t for p, t in tasks.items() if p not in leaving}

    assert all(tasks[p].cancelled() for p in leaving)
    for prompt, (status, body) in answers.items():
        assert body["id"] == ids[prompt]
        if prompt in failing:
            assert (status, body["error"]) == (422, "Content policy violation")
        else:
            assert status == 200
            assert body["url"] == tracked[ids[prompt]].result().url
    # the generations of the callers who left resolve too, each to its own outcome
    await wait_until(lambda: client.pending == [])
    for prompt in leaving:
        handle = tracked[ids[prompt]]
        if prompt in failing:
            assert isinstance(handle.exception(), ca.GenerationFailed)
        else:
            assert handle.result().url.endswith(f"/videos/{handle.id}.mp4")
    # exactly one submission per request, one generation per prompt
    assert sim.counters.submissions == sim.counters.generations_created == len(prompts)
    created = collections.Counter(g.prompt for g in sim.generations.values())
    assert created == collections.Counter(prompts)
    # and the same client goes on serving new callers
    async with _callers(service, ["one more"]) as later:
        await wait_until(lambda: "one more" in _ids_by_prompt(sim))
        sim.complete(_ids_by_prompt(sim)["one more"])
        status, body = await later["one more"]
    assert (status, body["id"]) == (200, _ids_by_prompt(sim)["one more"])
    assert not client.closed


async def test_aclose_resolves_each_pending_generation_with_client_closed_carrying_its_id(
    sim: FakeChuizi,
) -> None:
    async with _factory(sim)() as client:
        handles = [await client.submit(MODEL, f"clip {i}") for i in range(5)]
        waiters = [asyncio.create_task(h.wait()) for h in handles]
        await client.aclose()  # returns while the server is still generating all five
        assert client.pending == []
    assert all(g.status == "processing" for g in sim.generations.values())
    errors = await asyncio.gather(*waiters, return_exceptions=True)
    for handle, error in zip(handles, errors, strict=True):
        assert isinstance(error, ca.ClientClosed)
        assert error.generation_id == handle.id
        assert handle.exception() is error
    with pytest.raises(RuntimeError, match="closed"):
        await client.submit(MODEL, "too late")


async def test_shutdown_answers_waiting_callers_with_their_id_and_hands_the_ids_over(
    sim: FakeChuizi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service")
    handed_over: list[list[str]] = []
    prompts = [f"waiting {i}" for i in range(10)]
    async with (
        _http(example.make_app(_factory(sim), handover=handed_over.append)) as http,
        _callers(http, [*prompts, "left"]) as tasks,
    ):
        client = _client_of(http)
        await wait_until(lambda: len(client.pending) == 11)
        tasks["left"].cancel()
        await wait_until(lambda: _callers_gone(caplog) == 1)

        await http.server.close()  # the service shuts down with 11 generations pending

        answers = [await tasks[p] for p in prompts]
        assert client.closed
    ids = _ids_by_prompt(sim)
    assert all(g.status == "processing" for g in sim.generations.values())
    shutting_down = "the service is shutting down"
    assert answers == [(503, {"error": shutting_down, "id": ids[p]}) for p in prompts]
    assert len(handed_over) == 1 and sorted(handed_over[0]) == sorted(ids.values())
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(logged) == 1 and all(i in logged[0] for i in ids.values())

    # the next process takes the ids over: track() them, and the videos arrive
    async with _factory(sim)() as successor:
        resumed = [successor.track(i) for i in handed_over[0]]
        for generation_id in ids.values():
            sim.complete(generation_id)
        videos = [await h for h in resumed]
    assert [v.id for v in videos] == handed_over[0]
    assert all(v.url.endswith(f"/videos/{v.id}.mp4") for v in videos)
    assert sim.counters.generations_created == 11  # nothing submitted again


async def test_a_restarted_service_resumes_the_handed_over_ids(sim: FakeChuizi) -> None:
    handed_over: list[list[str]] = []
    first = example.make_app(_factory(sim), handover=handed_over.append)
    async with _http(first) as http, _callers(http, ["a", "b", "c"]):
        await wait_until(lambda: len(_client_of(http).pending) == 3)
        await http.server.close()
    (ids,) = handed_over

    async with _http(example.make_app(_factory(sim), resume=ids)) as http:
        async with http.get("/pending") as resp:
            assert sorted((await resp.json())["pending"]) == sorted(ids)
        sim.complete(ids[0])
        sim.fail(ids[1], message="Content policy violation")
        await wait_until(lambda: len(_client_of(http).pending) == 1)
        statuses = []
        for generation_id in [*ids, "gen-0000000000000000"]:
            async with http.get(f"/videos/{generation_id}") as resp:
                statuses.append((resp.status, await resp.json()))
    url = f"{sim.media_base_url}/videos/{ids[0]}.mp4"
    assert statuses == [
        (200, {"id": ids[0], "status": "completed", "url": url}),
        (200, {"id": ids[1], "status": "failed", "error": "Content policy violation"}),
        (200, {"id": ids[2], "status": "pending"}),
        (404, {"id": "gen-0000000000000000", "error": "not found"}),
    ]
