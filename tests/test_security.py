"""The key goes to the API's origin only, and appears in no repr, log line or exception."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import chuizi_async as ca
from chuizi_async._auth import USER_AGENT, AuthHeaders
from chuizi_async._config import Secret
from chuizi_async.testing import FakeChuizi, Faults

from .conftest import SPEED, ClientFactory, Recorder

KEY = "ck-" + "K3y5ecret" * 3 + "abcde"


@pytest_asyncio.fixture
async def api() -> AsyncIterator[Recorder]:
    async with Recorder() as recorder:
        yield recorder


@pytest_asyncio.fixture
async def elsewhere() -> AsyncIterator[Recorder]:
    async with Recorder() as recorder:
        yield recorder


async def test_a_redirect_to_another_origin_never_carries_the_key(
    api: Recorder, elsewhere: Recorder
) -> None:
    api.redirect_to = elsewhere.base_url
    async with ca.Client(KEY, base_url=api.base_url + "/v1", time_scale=SPEED) as client:
        models = await client.list_models()
    assert [m.id for m in models] == ["google/veo-3.1"]
    assert api.seen[0]["Authorization"] == f"Bearer {KEY}"
    assert elsewhere.seen and all("Authorization" not in h for h in elsewhere.seen)
    assert all(KEY not in str(h) for h in elsewhere.seen)


async def test_a_redirect_within_the_api_origin_keeps_the_key(api: Recorder) -> None:
    api.redirect_to = None
    async with ca.Client(KEY, base_url=api.base_url + "/v1", time_scale=SPEED) as client:
        await client.list_models()
    assert all(h.get("Authorization") == f"Bearer {KEY}" for h in api.seen)


async def test_the_media_host_never_sees_the_key(client: ca.Client, server: FakeChuizi) -> None:
    await client.generate_many(
        [{"model": "google/veo-3.1-fast", "prompt": f"p{i}"} for i in range(5)]
    )
    assert server.counters.media_requests_with_auth == 0
    assert all(not r.has_credentials for r in server.media_log)


async def test_the_key_appears_in_no_repr_error_or_log_record(
    make_client: ClientFactory, server: FakeChuizi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="chuizi_async")
    server.faults = Faults(
        server_error=0.2, connection_reset=0.1, truncated_json=0.1, retry_after=0.01
    )
    errors: list[BaseException] = []
    async with make_client(max_retries=8) as client:
        handles = [await client.submit("google/veo-3.1-fast", f"p{i}") for i in range(10)]
        results = await client.generate_many(
            [{"model": "google/veo-3.1-fast", "prompt": "forbidden"}], return_exceptions=True
        )
        errors.extend(r for r in results if isinstance(r, BaseException))
        try:
            await client.retrieve("gen-does-not-exist")
        except ca.ChuiziError as exc:
            errors.append(exc)
        texts = [repr(client), str(client), *(repr(h) for h in handles)]
    async with make_client(api_key="ck-" + "W" * 32) as wrong:
        try:
            await wrong.submit("google/veo-3.1-fast", "a cat")
        except ca.AuthenticationError as exc:
            errors.append(exc)
    texts += [repr(e) for e in errors] + [str(e) for e in errors]
    texts += [r.getMessage() for r in caplog.records]
    assert len(errors) >= 3
    for secret in (server.api_key, "W" * 32):
        assert not [t for t in texts if secret in t]


# -- the rule on where the key goes, on its own (chuizi_async._auth) ----------------------------

BASE = "https://api.chuizi.ai/v1"


def _carries_the_key(url: str, base_url: str = BASE) -> bool:
    auth = AuthHeaders(base_url, Secret(KEY))
    headers = auth.headers_for(url, has_body=False, request_id="req_0123456789abcdef")
    assert ("X-Request-Id" in headers) == ("Authorization" in headers)  # the same rule
    if "Authorization" in headers:
        assert headers["Authorization"] == f"Bearer {KEY}"
    return "Authorization" in headers


@pytest.mark.parametrize(
    "url",
    [
        "https://api.chuizi.ai/v1/models",  # under the API prefix
        "https://api.chuizi.ai/v1/video/generations/gen_1?x=1",
        "https://API.Chuizi.ai/v1/models",  # host names are case-insensitive
        "https://api.chuizi.ai:443/v1/models",  # the default port, spelled out
        "https://api.chuizi.ai/other",  # the same origin outside the prefix
    ],
)
def test_the_key_goes_to_the_api_origin(url: str) -> None:
    assert _carries_the_key(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://media.chuizi.ai/v1/video.mp4",  # the media host
        "https://cdn.example.com/v.mp4",  # another host
        "https://api.chuizi.ai:8443/v1/models",  # another port
        "http://api.chuizi.ai/v1/models",  # another scheme
        "https://api.chuizi.ai.evil.example/v1/models",  # a host that only starts alike
        "https://api.chuizi.ai@evil.example/v1/models",  # userinfo, then another host
        "https://evil.example/https://api.chuizi.ai/v1/",  # the API's URL in another's path
    ],
)
def test_the_key_never_goes_to_another_origin(url: str) -> None:
    assert not _carries_the_key(url)


def test_a_loopback_base_url_with_a_port_is_its_own_origin() -> None:
    base = "http://127.0.0.1:8123/v1"
    assert _carries_the_key("http://127.0.0.1:8123/v1/models", base)
    assert not _carries_the_key("http://127.0.0.1:8124/v1/models", base)
    assert not _carries_the_key("https://127.0.0.1:8123/v1/models", base)


def test_headers_name_the_client_and_type_only_a_body() -> None:
    auth = AuthHeaders(BASE, Secret(KEY))
    get = auth.headers_for(BASE + "/models", has_body=False, request_id="req_1")
    post = auth.headers_for(BASE + "/video/generations", has_body=True, request_id="req_2")
    media = auth.headers_for("https://media.example/v.mp4", has_body=False, request_id="req_3")
    assert get["User-Agent"] == media["User-Agent"] == USER_AGENT
    assert get["Accept"] == "application/json"
    assert "Content-Type" not in get and post["Content-Type"] == "application/json"
    assert (get["X-Request-Id"], post["X-Request-Id"]) == ("req_1", "req_2")
    assert media == {"Accept": "application/json", "User-Agent": USER_AGENT}


def test_the_headers_object_never_shows_the_key() -> None:
    auth = AuthHeaders(BASE, Secret(KEY))
    assert KEY not in repr(auth) and KEY not in str(auth)
    assert BASE in repr(auth)
