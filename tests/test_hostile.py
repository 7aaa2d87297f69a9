"""Hostile server data: crafted ids, URLs and bodies are refused with a clear error.

A loopback server of our own answers whatever a test tells it to. Nothing a server sends may
write outside the download folder, blow up memory, escape as a ``KeyError``/``TypeError``/
``UnicodeDecodeError``, or carry the key to another origin. (tests/test_download.py and
tests/test_security.py cover the plain cases: hostile ids of a ``Video``, non-http URLs given
to ``download``, GET redirects to another origin, media redirects.)
"""

from __future__ import annotations

import codecs
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

import chuizi_async as ca

from .conftest import SPEED, Loopback

KEY = "ck-" + "H0st1le" * 4 + "abcd"
MODEL = "google/veo-3.1-fast"
MiB = 1024 * 1024

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Crafted(Loopback):
    """A loopback server that answers every request as the test says, and records them."""

    def __init__(self) -> None:
        self.answer: Answer = raw(b"{}")
        self.seen: list[web.Request] = []

    @property
    def url(self) -> str:
        return self.base_url

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        return await self.answer(request)

    @property
    def keys_seen(self) -> list[str]:
        """Every credential header this server received."""
        return [
            value
            for r in self.seen
            for name, value in r.headers.items()
            if name.lower() in ("authorization", "x-api-key")
        ]


def raw(body: bytes, status: int = 200, content_type: str = "application/json") -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, status=status, headers={"Content-Type": content_type})

    return answer


def as_json(body: object, status: int = 200) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status)

    return answer


def redirect(location: str, status: int = 307) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return answer


def streamed(total: int | None, status: int = 200) -> Answer:
    """A chunked answer without Content-Length: ``total`` bytes, or endless (None)."""
    chunk = b" " * 65536

    async def answer(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/json"}
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        sent = 0
        try:
            while total is None or sent < total:
                await response.write(chunk)
                sent += len(chunk)
        except ConnectionError:
            pass  # the client stopped reading and closed the connection
        return response

    return answer


def gzip_bomb(size: int) -> Answer:
    """``size`` bytes of JSON-ish whitespace, gzip-compressed a thousandfold."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * MiB
    body = b"".join(packer.compress(block) for _ in range(size // MiB)) + packer.flush()

    async def answer(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return web.Response(body=body, headers=headers)

    return answer


@pytest_asyncio.fixture
async def api() -> AsyncIterator[Crafted]:
    async with Crafted() as server:
        yield server


@pytest_asyncio.fixture
async def media() -> AsyncIterator[Crafted]:
    async with Crafted() as server:
        server.answer = raw(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000, content_type="video/mp4")
        yield server


@pytest_asyncio.fixture
async def client(api: Crafted) -> AsyncIterator[ca.Client]:
    policy = ca.PollPolicy(first_poll_after=1.0, interval=1.0)
    options: dict[str, Any] = {"poll": policy, "time_scale": SPEED, "max_retries": 1}
    async with ca.Client(KEY, base_url=f"{api.url}/v1", **options) as c:
        yield c


def _completed(generation_id: str, url: str) -> dict[str, Any]:
    return {"id": generation_id, "status": "completed", "output": {"video_url": url}}


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


# -- the download folder ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/videos/..%2F..%2Fescape.mp4",
        "/videos/%2e%2e%2f%2e%2e%2fescape.mp4",
        "/videos/%252e%252e%252fescape.mp4",
        "/videos/..%5C..%5Cescape.mp4",
        "/videos/%2Fetc%2Fpasswd",
        "/videos/%00.mp4",
        "/videos/..",
        "/",
    ],
)
async def test_a_hostile_video_url_never_writes_outside_the_folder(
    client: ca.Client, media: Crafted, tmp_path: Path, path: str
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    written = await client.download(f"{media.url}{path}", folder)
    assert written.parent == folder.resolve()
    assert _files_under(tmp_path) == [written]
    assert written.read_bytes()[4:8] == b"ftyp"


@pytest.mark.parametrize(
    "hostile_id",
    ["../../escape", "..\\..\\escape", "/etc/passwd", "~/escape", "....", "\x00", "x" * 5000],
)
async def test_a_hostile_id_in_a_status_answer_never_writes_outside_the_folder(
    api: Crafted, client: ca.Client, media: Crafted, tmp_path: Path, hostile_id: str
) -> None:
    api.answer = as_json(_completed(hostile_id, f"{media.url}/videos/clip.mp4"))
    status = await client.retrieve("gen-0123456789abcdef")
    assert status.video is not None
    folder = tmp_path / "out"
    folder.mkdir()
    written = await client.download(status.video, folder)
    assert written.parent == folder.resolve()
    assert len(written.name) < 200
    assert _files_under(tmp_path) == [written]


async def test_a_symlink_planted_in_the_folder_is_not_followed_out_of_it(
    client: ca.Client, media: Crafted, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "gen-1.mp4").symlink_to(outside)
    video = ca.Video(id="gen-1", url=f"{media.url}/videos/gen-1.mp4")
    with pytest.raises(ca.InvalidRequest, match="outside"):
        await client.download(video, folder, overwrite=True)
    assert outside.read_bytes() == b"precious"
    assert media.seen == []


# -- URLs that are not http(s) ------------------------------------------------------------

NON_HTTP = ["javascript:alert(1)", "file:///etc/passwd", "data:video/mp4;base64,AAAA", "//x/v"]


@pytest.mark.parametrize("url", NON_HTTP)
async def test_a_video_url_that_is_not_http_is_never_fetched(
    api: Crafted, client: ca.Client, tmp_path: Path, url: str
) -> None:
    api.answer = as_json(_completed("gen-1", url))
    with pytest.raises(ca.ChuiziError):  # refused when read, or at the latest when fetched
        status = await client.retrieve("gen-1")
        assert status.video is not None
        await client.download(status.video, tmp_path)
    assert _files_under(tmp_path) == []


@pytest.mark.parametrize("url", NON_HTTP)
async def test_a_status_answer_with_a_video_url_that_is_not_http_is_refused(
    api: Crafted, client: ca.Client, url: str
) -> None:
    api.answer = as_json(_completed("gen-1", url))
    # final: the generation is done and its video unusable, so checking again cannot help
    with pytest.raises(ca.GenerationFailed, match="not http"):
        await client.retrieve("gen-1")
    with pytest.raises(ca.GenerationFailed, match="not http") as info:
        await client.track("gen-1")
    assert info.value.generation_id == "gen-1"


@pytest.mark.parametrize("location", ["file:///etc/passwd", "javascript:alert(1)"])
async def test_a_media_redirect_to_a_url_that_is_not_http_is_refused(
    client: ca.Client, media: Crafted, tmp_path: Path, location: str
) -> None:
    media.answer = redirect(location, status=302)
    with pytest.raises(ca.ChuiziError):
        await client.download(f"{media.url}/videos/gen-1.mp4", tmp_path)
    assert _files_under(tmp_path) == []


# -- enormous bodies ----------------------------------------------------------------------

ENORMOUS = {
    "content-length": raw(b" " * (2 * MiB)),
    "chunked": streamed(2 * MiB),
    "endless": streamed(None),
    "gzip-bomb": gzip_bomb(64 * MiB),
    "error-page": raw(b"<html>" + b"x" * (2 * MiB), status=500, content_type="text/html"),
}


@pytest.mark.parametrize(
    "kind",
    [
        "content-length",
        "chunked",
        "endless",
        "gzip-bomb",
        "error-page",
    ],
)
@pytest.mark.parametrize("call", ["submit", "status"])
async def test_an_enormous_answer_is_refused_without_reading_it_whole(
    api: Crafted, client: ca.Client, kind: str, call: str
) -> None:
    api.answer = ENORMOUS[kind]
    tracemalloc.start()
    try:
        with pytest.raises(ca.ResponseFormatError, match="limit"):
            if call == "submit":
                await client.submit(MODEL, "a cat")
            else:
                await client.retrieve("gen-1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB  # the server's bodies were made before tracing: the peak is ours


async def test_an_enormous_error_answer_from_the_media_host_writes_nothing(
    client: ca.Client, media: Crafted, tmp_path: Path
) -> None:
    media.answer = streamed(None, status=404)
    with pytest.raises(ca.ChuiziError):
        await client.download(f"{media.url}/videos/gen-1.mp4", tmp_path)
    assert _files_under(tmp_path) == []


# -- answers that are not the API's -------------------------------------------------------

GARBAGE = {
    "invalid-utf8": b'{"id": "gen-\xff\xfe\xfd", "status": "processing"}',
    "utf8-bom-garbage": b"\xef\xbb\xbf\xc3\x28\xa0\xa1",
    "binary": bytes(range(256)) * 4,
    "html": b"<html><head><title>Just a moment...</title></head><body>checking</body></html>",
    "truncated-json": b'{"id": "gen-0123456789abcdef", "status": "proc',
    "empty": b"",
    "json-list": b'["gen-0123456789abcdef"]',
    "json-string": b'"gen-0123456789abcdef"',
    "json-null": b"null",
    "json-number": b"1e999",
}


@pytest.mark.parametrize("kind", GARBAGE)
async def test_garbage_as_a_submit_answer_is_a_response_format_error(
    api: Crafted, client: ca.Client, kind: str
) -> None:
    api.answer = raw(GARBAGE[kind])
    with pytest.raises(ca.ResponseFormatError):
        await client.submit(MODEL, "a cat")


@pytest.mark.parametrize("kind", GARBAGE)
async def test_garbage_as_a_status_answer_is_a_response_format_error(
    api: Crafted, client: ca.Client, kind: str
) -> None:
    api.answer = raw(GARBAGE[kind])
    with pytest.raises(ca.ResponseFormatError):
        await client.retrieve("gen-0123456789abcdef")


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: codecs.BOM_UTF8 + text.encode(),
        lambda text: text.encode("utf-16"),
        lambda text: text.encode("utf-32-le"),
    ],
    ids=["utf-8 with a byte order mark", "utf-16", "utf-32"],
)
async def test_a_status_answer_in_another_unicode_encoding_is_read(
    api: Crafted, client: ca.Client, encode: Callable[[str], bytes]
) -> None:
    text = '{"id": "gen-0123456789abcdef", "status": "processing"}'
    api.answer = raw(encode(text))
    status = await client.retrieve("gen-0123456789abcdef")
    assert (status.id, status.state) == ("gen-0123456789abcdef", "pending")


@pytest.mark.parametrize("kind", ["invalid-utf8", "binary", "html", "empty"])
@pytest.mark.parametrize("status", [400, 404, 429, 500, 502])
async def test_garbage_as_an_error_answer_is_an_api_error_with_its_status(
    api: Crafted, client: ca.Client, kind: str, status: int
) -> None:
    api.answer = raw(GARBAGE[kind], status=status, content_type="text/html")
    with pytest.raises(ca.APIError) as caught:
        await client.submit(MODEL, "a cat")
    assert caught.value.status_code == status
    assert isinstance(caught.value.message, str) and caught.value.message


DEEP = b"[" * 100_000 + b"]" * 100_000
"""Valid JSON within the size limit, nested deeper than Python's recursion limit."""

_DEEP_BUG = (
    "BUG: _responses.decode_json and error_from_response catch ValueError only; json.loads "
    "raises RecursionError on deeply nested JSON, which escapes as a RecursionError (and in "
    "the poller fails the generation with 'unexpected error' instead of checking again)"
)


@pytest.mark.parametrize("call", ["submit", "status", "error answer"])
async def test_deeply_nested_json_is_a_clear_error(
    api: Crafted, client: ca.Client, call: str
) -> None:
    if call == "error answer":
        api.answer = raw(b'{"error": ' + DEEP + b"}", status=400)
    else:
        api.answer = raw(DEEP)
    with pytest.raises(ca.ChuiziError):
        if call == "status":
            await client.retrieve("gen-0123456789abcdef")
        else:
            await client.submit(MODEL, "a cat")


async def test_a_deeply_nested_status_answer_never_fails_a_generation(
    api: Crafted, client: ca.Client, media: Crafted
) -> None:
    answers = iter([DEEP])

    async def server(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return web.json_response({"id": "gen-1", "status": "processing"})
        body = next(answers, None)
        if body is None:
            return web.json_response(_completed("gen-1", f"{media.url}/videos/gen-1.mp4"))
        return web.Response(body=body, content_type="application/json")

    api.answer = server
    handle = await client.submit(MODEL, "a cat")
    assert (await handle).id == "gen-1"


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "completed", "output": []},
        {"status": "completed", "output": {"video_url": 5}},
        {"status": "completed", "output": {"video_url": ["https://x/v.mp4"]}},
        {"status": ["completed"]},
        {"status": {"state": "completed"}},
        {"status": None},
        {"data": "completed"},
        {"data": {"status": 1}},
    ],
)
async def test_a_status_answer_of_the_wrong_shape_is_a_clear_error(
    api: Crafted, client: ca.Client, answer: dict[str, Any]
) -> None:
    api.answer = as_json(answer)
    with pytest.raises(ca.ChuiziError):
        await client.retrieve("gen-1")


async def test_fields_of_the_wrong_type_in_a_status_answer_are_ignored(
    api: Crafted, client: ca.Client
) -> None:
    api.answer = as_json(
        {
            **_completed("gen-1", "https://media.example/gen-1.mp4"),
            "created": "yesterday",
            "model": ["m"],
            "usage": "five seconds",
            "x_chuizi": {"cost": {"usd": 1}, "latency_ms": "1e999"},
        }
    )
    video = (await client.retrieve("gen-1")).video
    assert video == ca.Video(id="gen-1", url="https://media.example/gen-1.mp4")
    api.answer = as_json({"id": "gen-1", "status": "failed", "error": 5})
    status = await client.retrieve("gen-1")
    assert status.state == "failed" and status.error is not None
    assert status.error.message == "generation failed"


async def test_garbage_status_answers_never_fail_a_generation(
    api: Crafted, client: ca.Client, media: Crafted
) -> None:
    answers = iter(GARBAGE.values())

    async def flaky(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return web.json_response({"id": "gen-1", "status": "processing"})
        body = next(answers, None)
        if body is None:
            return web.json_response(_completed("gen-1", f"{media.url}/videos/gen-1.mp4"))
        return web.Response(body=body, content_type="application/json")

    api.answer = flaky
    handle = await client.submit(MODEL, "a cat")
    video = await handle
    assert video.id == "gen-1"
    assert client.poller_stats.transient_failures >= len(GARBAGE)


# -- generation ids -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "generation_id",
    [
        "g",
        "gen-0123456789abcdef",
        "gen-abcdefghijklmnopqrstuvwx",
        "gen-" + "f" * 60,
        "gen-" + "0" * 1000,
        "gen-ü",
        "a/../../key/info",
        "x?y=1&id=other#z",
    ],
)
async def test_a_submit_answer_with_an_id_of_any_length_is_tracked_by_that_id(
    api: Crafted, client: ca.Client, media: Crafted, generation_id: str
) -> None:
    async def server(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return web.json_response({"id": generation_id, "status": "processing"})
        return web.json_response(_completed(generation_id, f"{media.url}/videos/v.mp4"))

    api.answer = server
    handle = await client.submit(MODEL, "a cat")
    assert handle.id == generation_id
    video = await handle
    assert video.id == generation_id
    check = api.seen[-1]
    assert (check.path, check.query.getall("id")) == ("/v1/generation", [generation_id])


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"status": "processing"},
        {"id": None},
        {"id": ""},
        {"id": 12345},
        {"id": ["gen-1"]},
        {"id": {"value": "gen-1"}},
        {"x_chuizi": {"generation_id": 7}},
        {"data": {"id": None}},
    ],
)
async def test_a_submit_answer_without_a_usable_id_is_a_response_format_error(
    api: Crafted, client: ca.Client, answer: dict[str, Any]
) -> None:
    api.answer = as_json(answer)
    with pytest.raises(ca.ResponseFormatError, match="id"):
        await client.submit(MODEL, "a cat")
    assert client.pending == []


# -- the key and redirects (what tests/test_security.py does not cover yet) ---------------


@pytest_asyncio.fixture
async def elsewhere() -> AsyncIterator[Crafted]:
    async with Crafted() as server:
        yield server


async def test_a_submission_redirected_to_another_origin_never_carries_the_key(
    api: Crafted, client: ca.Client, elsewhere: Crafted
) -> None:
    api.answer = redirect(f"{elsewhere.url}/v1/videos/generations", status=307)
    elsewhere.answer = as_json({"id": "gen-1", "status": "processing"})
    handle = await client.submit(MODEL, "a cat")
    assert handle.id == "gen-1"
    assert [r.method for r in elsewhere.seen] == ["POST"]
    assert elsewhere.keys_seen == []
    assert api.keys_seen == [f"Bearer {KEY}"]


async def test_a_status_check_redirected_to_another_origin_never_carries_the_key(
    api: Crafted, client: ca.Client, elsewhere: Crafted
) -> None:
    api.answer = redirect(f"{elsewhere.url}/v1/generation?id=gen-1", status=302)
    elsewhere.answer = as_json({"id": "gen-1", "status": "processing"})
    status = await client.retrieve("gen-1")
    assert status.state == "pending"
    assert elsewhere.seen and elsewhere.keys_seen == []


async def test_another_name_for_the_api_host_is_another_origin(
    api: Crafted, client: ca.Client
) -> None:
    port = api.url.rsplit(":", 1)[1]

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.host.startswith("127.0.0.1"):
            return web.Response(status=307, headers={"Location": f"http://localhost:{port}/x"})
        return web.json_response({"object": "list", "data": []})

    api.answer = answer
    assert await client.list_models() == []
    via_alias = [r for r in api.seen if r.host.startswith("localhost")]
    assert via_alias and all("Authorization" not in r.headers for r in via_alias)


async def test_a_redirect_loop_ends_in_a_clear_error(api: Crafted, client: ca.Client) -> None:
    api.answer = redirect("/v1/models", status=307)
    with pytest.raises(ca.APIError) as caught:
        await client.list_models()
    assert caught.value.status_code == 307
    assert len(api.seen) <= 10
