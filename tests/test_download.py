"""Downloads: atomic, checked, inside their folder, and never with the key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi

from .conftest import Recorder

VEO = "google/veo-3.1-fast"


@pytest_asyncio.fixture
async def video(client: ca.Client) -> ca.Video:
    return await client.generate(VEO, "a cat")


async def test_download_into_a_folder_names_the_file_after_the_id(
    client: ca.Client, server: FakeChuizi, video: ca.Video, tmp_path: Path
) -> None:
    path = await client.download(video, tmp_path)
    assert path == tmp_path / f"{video.id}.mp4"
    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    assert server.counters.media_requests == 1
    assert server.counters.media_requests_with_auth == 0


async def test_download_to_a_file_path_and_from_a_plain_url(
    client: ca.Client, video: ca.Video, tmp_path: Path
) -> None:
    path = await client.download(video.url, tmp_path / "nested" / "clip.mp4")
    assert path == tmp_path / "nested" / "clip.mp4"
    assert path.stat().st_size > 1000


async def test_an_existing_file_is_kept_unless_overwrite(
    client: ca.Client, server: FakeChuizi, video: ca.Video, tmp_path: Path
) -> None:
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"mine")
    assert await client.download(video, target) == target
    assert target.read_bytes() == b"mine"
    assert server.counters.media_requests == 0
    await client.download(video, target, overwrite=True)
    assert target.read_bytes()[4:8] == b"ftyp"


@pytest.mark.parametrize(
    "hostile", ["../../escape", "/etc/passwd", "..", "a/../../b", "%2e%2e%2fx"]
)
async def test_a_hostile_id_never_writes_outside_the_folder(
    client: ca.Client, video: ca.Video, tmp_path: Path, hostile: str
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    crafted = ca.Video(id=hostile, url=video.url)
    path = await client.download(crafted, folder)
    assert path.parent == folder.resolve()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [path.name]


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x.mp4", "javascript:alert(1)", "/videos/x"]
)
async def test_non_http_urls_are_refused(client: ca.Client, tmp_path: Path, url: str) -> None:
    with pytest.raises(ca.InvalidRequest, match="only http"):
        await client.download(url, tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_a_failed_download_leaves_no_file(
    client: ca.Client, server: FakeChuizi, tmp_path: Path
) -> None:
    with pytest.raises(ca.NotFoundError):
        await client.download(f"{server.media_base_url}/videos/gen-0000000000000000.mp4", tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_leftovers_of_a_killed_download_are_removed(
    client: ca.Client, video: ca.Video, tmp_path: Path
) -> None:
    stale = tmp_path / f".{video.id}.mp4.chuizi-0123456789ab.part"
    stale.write_bytes(b"half")
    other = tmp_path / ".other.mp4.chuizi-0123456789ab.part"
    other.write_bytes(b"half")
    await client.download(video, tmp_path)
    assert not stale.exists()
    assert ca.remove_partial_downloads(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{video.id}.mp4"]


class _Media(Recorder):
    """A media host that answers badly: cut short, or redirecting elsewhere (302)."""

    redirect = web.HTTPFound

    async def answer(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "5000"})
        await response.prepare(request)
        await response.write(b"\x00" * 1000)  # then the connection ends: cut short
        assert request.transport is not None
        request.transport.close()
        return response


@pytest_asyncio.fixture
async def bad_media() -> AsyncIterator[_Media]:
    async with _Media() as media:
        yield media


async def test_a_download_cut_short_is_retried_then_raised_leaving_nothing(
    client: ca.Client, bad_media: _Media, tmp_path: Path
) -> None:
    with pytest.raises(ca.APIConnectionError):
        await client.download(f"{bad_media.base_url}/videos/x.mp4", tmp_path)
    assert len(bad_media.seen) == client.max_retries + 1
    assert list(tmp_path.iterdir()) == []


class _FlakyMedia(_Media):
    """Cut short on the first request, whole on the next."""

    async def answer(self, request: web.Request) -> web.StreamResponse:
        if len(self.seen) == 1:
            return await super().answer(request)
        return web.Response(body=b"\x01" * 5000)


async def test_a_download_cut_short_once_is_retried_into_the_whole_file(
    client: ca.Client, tmp_path: Path
) -> None:
    async with _FlakyMedia() as media:
        path = await client.download(f"{media.base_url}/videos/x.mp4", tmp_path / "x.mp4")
        assert len(media.seen) == 2
    # the second attempt's bytes only (the first one's partial file was overwritten), no leftover
    assert path.read_bytes() == b"\x01" * 5000
    assert [p.name for p in tmp_path.iterdir()] == ["x.mp4"]


async def test_a_media_redirect_never_carries_the_key(
    client: ca.Client, server: FakeChuizi, video: ca.Video, bad_media: _Media, tmp_path: Path
) -> None:
    bad_media.redirect_to = server.media_base_url  # the same path on the real media host
    path = await client.download(
        video.url.replace(server.media_base_url, bad_media.base_url), tmp_path / "v.mp4"
    )
    assert path.stat().st_size > 1000
    assert bad_media.seen and all("Authorization" not in h for h in bad_media.seen)
    assert server.counters.media_requests_with_auth == 0
