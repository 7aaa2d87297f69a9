"""Checks a request against the catalogue and builds its JSON body, before any money is spent."""

from __future__ import annotations

import base64
import mimetypes
import os
import re
from typing import Any

import anyio
import attrs

from ._catalogue import ModelInfo, lookup_model
from ._exceptions import InvalidRequest
from ._models import GenerationRequest, ImageInput

__all__ = ["build_body", "build_body_now", "validate"]

_ASPECT_RATIO = re.compile(r"[1-9][0-9]*:[1-9][0-9]*")  # W:H; which ones a model takes is its own
_MAX_IMAGE_BYTES = 20 * 1024 * 1024
# the request's fields that the body carries under their own name and value; the others are
# the body's head (model, prompt), a reference to upload (image, reference_images, video), the
# journal's (key) or merged last (extra_body)
_NOT_AS_IS = frozenset(
    {"model", "prompt", "image", "reference_images", "video", "key", "extra_body"}
)
_SENT_AS_IS = tuple(
    field.name for field in attrs.fields(GenerationRequest) if field.name not in _NOT_AS_IS
)


def validate(request: GenerationRequest) -> None:
    """Raise ``InvalidRequest`` naming what is wrong; unknown models are passed through."""
    if not isinstance(request.model, str) or not request.model.strip():
        raise InvalidRequest("model must be a non-empty string such as 'google/veo-3.1-fast'")
    if not isinstance(request.prompt, str) or not request.prompt.strip():
        raise InvalidRequest("prompt must not be blank: describe the video to generate")
    ratio = request.aspect_ratio
    if ratio is not None and not (isinstance(ratio, str) and _ASPECT_RATIO.fullmatch(ratio)):
        raise InvalidRequest(
            f"aspect_ratio must be width:height in whole numbers, such as '16:9', '9:16' or "
            f"'1:1', not {ratio!r}"
        )
    if request.watermark is not None and not isinstance(request.watermark, bool):
        raise InvalidRequest(f"watermark must be True or False, not {request.watermark!r}")
    info = lookup_model(request.model)
    duration = request.duration
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)):
        raise InvalidRequest(f"duration must be a whole number of seconds, not {duration!r}")
    if info is None:
        return
    if duration is not None and not 1 <= duration <= info.max_duration:
        raise InvalidRequest(
            f"duration {duration} is out of range for {info.id}: use 1..{info.max_duration} seconds"
        )
    if info.kind != "text-to-video":  # a text-to-video model needs no other input
        _check_inputs(info, request)
    if request.video is not None and not _is_url(request.video):
        raise InvalidRequest("video must be an http(s) URL of the source video")


def _check_inputs(info: ModelInfo, request: GenerationRequest) -> None:
    """The image, reference images or source video that ``info``'s kind of model needs."""
    if info.needs_image and request.image is None:
        raise InvalidRequest(f"{info.id} is image-to-video: pass image= (a URL, path or bytes)")
    if info.needs_reference_images and not request.reference_images:
        raise InvalidRequest(f"{info.id} needs reference_images= (a list of URLs, paths or bytes)")
    if info.needs_video and not request.video:
        raise InvalidRequest(f"{info.id} edits a video: pass video= (the source video's URL)")


def _is_url(value: str) -> bool:
    return value.startswith(("https://", "http://"))


async def _image_reference(image: ImageInput, field: str) -> str:
    """A URL or ``data:`` URI for an image given as a URL, data URI, path or bytes."""
    if isinstance(image, bytes):
        return _data_uri(image, "image/png")
    if isinstance(image, str) and (_is_url(image) or image.startswith("data:")):
        return image
    if isinstance(image, (str, os.PathLike)):
        path = anyio.Path(os.fspath(image))
        if not await path.is_file():
            raise InvalidRequest(
                f"{field} {os.fspath(image)!r} is neither an http(s) URL, a data: URI "
                "nor an existing file"
            )
        data = await path.read_bytes()
        mime = mimetypes.guess_type(str(path))[0] or "image/png"
        return _data_uri(data, mime)
    raise InvalidRequest(f"{field} must be a URL, a data: URI, a file path or bytes")


def _data_uri(data: bytes, mime: str) -> str:
    if not data:
        raise InvalidRequest("image bytes are empty")
    if len(data) > _MAX_IMAGE_BYTES:
        raise InvalidRequest(f"image is {len(data)} bytes; the limit here is {_MAX_IMAGE_BYTES}")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


async def build_body(request: GenerationRequest) -> dict[str, Any]:
    """The JSON body of a submission (validated first); ``extra_body`` merges last."""
    validate(request)
    image = request.image
    image_url = None if image is None else await _image_reference(image, "image")
    references = request.reference_images
    reference_urls = (
        [await _image_reference(img, "reference image") for img in references]
        if references
        else None
    )
    return _body(request, image_url, reference_urls)


def build_body_now(request: GenerationRequest) -> dict[str, Any] | None:
    """``build_body`` without awaiting, for a request with no image to read; None if it has
    one (a batch's common case, without a frame)."""
    if request.image is not None or request.reference_images:
        return None
    validate(request)
    return _body(request, None, None)


def _body(
    request: GenerationRequest, image_url: str | None, reference_urls: list[str] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "prompt": request.prompt}
    for name in _SENT_AS_IS:
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if image_url is not None:
        body["image_url"] = image_url
    if reference_urls:
        body["reference_image_urls"] = reference_urls
    if request.video is not None:
        body["video_url"] = request.video
    if request.extra_body:
        body.update(request.extra_body)
    return body
