"""Checking a request against the catalogue and building its JSON body (``_validation``)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

import chuizi_async as ca
from chuizi_async._validation import build_body, validate

IMAGE_URL = "https://example.com/cat.png"
VIDEO_URL = "https://media.chuizi.ai/videos/gen-0123456789abcdef.mp4"


def request(
    model: str = "google/veo-3.1-fast", prompt: str = "a cat", **kw: Any
) -> ca.GenerationRequest:
    return ca.GenerationRequest(model, prompt, **kw)


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_blank_prompt_is_refused(prompt: str) -> None:
    with pytest.raises(ca.InvalidRequest, match="prompt"):
        validate(request(prompt=prompt))


@pytest.mark.parametrize("model", ["", "  "])
def test_blank_model_is_refused(model: str) -> None:
    with pytest.raises(ca.InvalidRequest, match="model"):
        validate(request(model=model))


@pytest.mark.parametrize("duration", [True, False, 5.0, 4.5, "5"])
def test_duration_must_be_a_whole_number(duration: object) -> None:
    with pytest.raises(ca.InvalidRequest, match="duration"):
        validate(request(duration=duration))


@pytest.mark.parametrize(
    ("model", "duration", "max_duration"),
    [
        ("google/veo-3.1-fast", 0, 8),
        ("google/veo-3.1-fast", 9, 8),
        ("google/veo-3.1", -1, 8),
        ("bedrock/nova-reel-1.1", 7, 6),
        ("bailian/happyhorse-1.0-t2v", 16, 15),
        ("bailian/wan2.6-t2v", 6, 5),
    ],
)
def test_duration_out_of_range_names_model_and_range(
    model: str, duration: int, max_duration: int
) -> None:
    with pytest.raises(ca.InvalidRequest) as info:
        validate(request(model=model, duration=duration))
    message = str(info.value)
    assert model in message
    assert f"1..{max_duration}" in message
    assert str(duration) in message


@pytest.mark.parametrize("duration", [1, 8, None])
def test_duration_within_range_is_accepted(duration: int | None) -> None:
    validate(request(model="google/veo-3.1", duration=duration))


def test_a_bare_alias_is_checked_like_its_model() -> None:
    with pytest.raises(ca.InvalidRequest, match=r"google/veo-3\.1-fast.*1\.\.8"):
        validate(request(model="veo-3.1-fast", duration=9))


@pytest.mark.parametrize("duration", [0, 9, 60, 10_000, None])
def test_unknown_model_is_passed_through_unchecked(duration: int | None) -> None:
    validate(request(model="qwen/wan2.7-t2v", duration=duration))
    validate(request(model="someone/new-model-9", duration=duration))


async def test_unknown_model_body_keeps_any_duration() -> None:
    body = await build_body(request(model="qwen/wan2.7-t2v", duration=60))
    assert body == {"model": "qwen/wan2.7-t2v", "prompt": "a cat", "duration": 60}


@pytest.mark.parametrize("model", ["bailian/happyhorse-1.0-i2v", "bailian/wan2.6-i2v"])
def test_image_to_video_without_image_is_refused(model: str) -> None:
    with pytest.raises(ca.InvalidRequest, match="image") as info:
        validate(request(model=model))
    assert model in str(info.value)


def test_reference_to_video_without_reference_images_is_refused() -> None:
    for refs in (None, ()):
        with pytest.raises(ca.InvalidRequest, match="reference_images"):
            validate(request(model="bailian/happyhorse-1.0-r2v", reference_images=refs))


def test_video_edit_without_video_is_refused() -> None:
    with pytest.raises(ca.InvalidRequest, match="video="):
        validate(request(model="bailian/happyhorse-1.0-video-edit"))


def test_video_that_is_not_a_url_is_refused() -> None:
    with pytest.raises(ca.InvalidRequest, match="URL"):
        validate(request(model="bailian/happyhorse-1.0-video-edit", video="/tmp/clip.mp4"))


@pytest.mark.parametrize(
    "ratio", ["16x9", "", "wide", "16:0", "0:9", "-16:9", "16:9:1", " 16:9", "1.5:1", 169]
)
def test_an_aspect_ratio_that_is_not_width_height_is_refused(ratio: object) -> None:
    with pytest.raises(ca.InvalidRequest, match="aspect_ratio must be width:height") as info:
        validate(request(aspect_ratio=ratio))
    assert "16:9" in str(info.value)


@pytest.mark.parametrize("ratio", ["16:9", "9:16", "1:1", "4:3", "21:9", "2:1"])
async def test_any_width_height_aspect_ratio_is_sent_for_the_server_to_decide(ratio: str) -> None:
    body = await build_body(request(aspect_ratio=ratio, resolution="720p"))
    assert body["aspect_ratio"] == ratio
    assert body["resolution"] == "720p"


@pytest.mark.parametrize("watermark", [True, False])
async def test_watermark_is_a_known_field_sent_as_given(watermark: bool) -> None:
    body = await build_body(request(watermark=watermark))
    assert body["watermark"] is watermark


@pytest.mark.parametrize("watermark", ["no", 0, 1, None])
async def test_watermark_must_be_a_boolean(watermark: object) -> None:
    if watermark is None:  # not given: not sent
        assert "watermark" not in await build_body(request(watermark=watermark))
        return
    with pytest.raises(ca.InvalidRequest, match="watermark must be True or False"):
        validate(request(watermark=watermark))


def test_a_request_mapping_may_name_watermark() -> None:
    coerced = ca.GenerationRequest.coerce({"model": "veo-3.1", "prompt": "a", "watermark": True})
    assert coerced.watermark is True


async def test_minimal_body() -> None:
    body = await build_body(request(duration=5))
    assert body == {"model": "google/veo-3.1-fast", "prompt": "a cat", "duration": 5}


async def test_plain_fields_are_sent_under_their_own_names() -> None:
    given = request(duration=5, aspect_ratio="16:9", resolution="720p", watermark=False)
    body = await build_body(given)
    assert body == {
        "model": "google/veo-3.1-fast",
        "prompt": "a cat",
        "duration": 5,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "watermark": False,
    }


async def test_build_body_validates_first() -> None:
    with pytest.raises(ca.InvalidRequest, match="duration"):
        await build_body(request(duration=99))


async def test_the_key_of_a_request_is_not_sent() -> None:
    body = await build_body(request(key="row-17"))
    assert "key" not in body
    assert "row-17" not in body.values()


async def test_image_url_is_sent_as_is() -> None:
    body = await build_body(request(model="bailian/wan2.6-i2v", image=IMAGE_URL))
    assert body["image_url"] == IMAGE_URL


async def test_image_data_uri_is_sent_as_is() -> None:
    uri = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8jpeg").decode()
    body = await build_body(request(model="bailian/wan2.6-i2v", image=uri))
    assert body["image_url"] == uri


async def test_image_bytes_become_a_base64_data_uri() -> None:
    data = b"\x89PNG\r\n\x1a\nsome pixels"
    body = await build_body(request(model="bailian/wan2.6-i2v", image=data))
    prefix = "data:image/png;base64,"
    assert body["image_url"].startswith(prefix)
    assert base64.b64decode(body["image_url"][len(prefix) :]) == data


async def test_empty_image_bytes_are_refused() -> None:
    with pytest.raises(ca.InvalidRequest, match="empty"):
        await build_body(request(model="bailian/wan2.6-i2v", image=b""))


@pytest.mark.parametrize(
    ("name", "mime"),
    [("cat.jpg", "image/jpeg"), ("cat.png", "image/png"), ("cat.gif", "image/gif")],
)
@pytest.mark.parametrize("as_str", [True, False], ids=["str", "Path"])
async def test_image_file_becomes_a_data_uri_with_its_mime(
    tmp_path: Path, name: str, mime: str, as_str: bool
) -> None:
    data = b"fake image bytes " + name.encode()
    path = tmp_path / name
    path.write_bytes(data)
    image: str | Path = str(path) if as_str else path
    body = await build_body(request(model="bailian/wan2.6-i2v", image=image))
    prefix = f"data:{mime};base64,"
    assert body["image_url"].startswith(prefix)
    assert base64.b64decode(body["image_url"][len(prefix) :]) == data


async def test_missing_image_path_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "cat.png"
    with pytest.raises(ca.InvalidRequest) as info:
        await build_body(request(model="bailian/wan2.6-i2v", image=str(missing)))
    assert str(missing) in str(info.value)


async def test_a_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ca.InvalidRequest, match="existing file"):
        await build_body(request(model="bailian/wan2.6-i2v", image=tmp_path))


async def test_reference_images_are_sent_as_reference_image_urls(tmp_path: Path) -> None:
    path = tmp_path / "ref.jpg"
    path.write_bytes(b"jpeg")
    body = await build_body(
        request(
            model="bailian/happyhorse-1.0-r2v",
            reference_images=[IMAGE_URL, b"png", path],
        )
    )
    refs = body["reference_image_urls"]
    assert "reference_images" not in body
    assert refs[0] == IMAGE_URL
    assert refs[1] == "data:image/png;base64," + base64.b64encode(b"png").decode()
    assert refs[2] == "data:image/jpeg;base64," + base64.b64encode(b"jpeg").decode()


async def test_video_is_sent_as_video_url() -> None:
    body = await build_body(request(model="bailian/happyhorse-1.0-video-edit", video=VIDEO_URL))
    assert body["video_url"] == VIDEO_URL
    assert "video" not in body


async def test_extra_body_merges_last_and_overrides() -> None:
    body = await build_body(
        request(
            duration=5,
            aspect_ratio="16:9",
            extra_body={"watermark": False, "duration": 7, "aspect_ratio": "4:3", "seed": 1},
        )
    )
    assert body == {
        "model": "google/veo-3.1-fast",
        "prompt": "a cat",
        "duration": 7,
        "aspect_ratio": "4:3",
        "watermark": False,
        "seed": 1,
    }
