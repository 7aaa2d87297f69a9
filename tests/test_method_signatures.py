"""``Client``'s methods restate, as typed parameters, what the parts behind them take.

Typed parameters are what an IDE and ``help()`` show, so they stay; the parts are the one
source of each list, and these tests keep the methods on them. ``submit()`` and ``generate()``
take ``GenerationRequest``'s fields: a field added to the request and not to a method (or a
method's parameter not passed on) fails here. ``generate_many()`` and ``as_completed()``
take their runners' options (``_generate_many.generate_many``, ``AsCompleted``).
"""

from __future__ import annotations

import inspect
from typing import Any

import attrs

import chuizi_async as ca
from chuizi_async._as_completed import AsCompleted
from chuizi_async._generate_many import generate_many
from chuizi_async.testing import FakeChuizi

VEO = "google/veo-3.1-fast"

# the request stores what the methods take in a frozen form
_STORED_AS = {"reference_images": ("Sequence[ImageInput] | None", "tuple[ImageInput, ...] | None")}
# generate() has no journal to name a request in, and takes a deadline instead
_GENERATE_ONLY = {"timeout"}
_SUBMIT_ONLY = {"key"}
_REQUIRED = "(required)"


def _fields() -> dict[str, tuple[Any, Any]]:
    """name -> (annotation, default) of every ``GenerationRequest`` field."""
    return {
        field.name: (field.type, _REQUIRED if field.default is attrs.NOTHING else field.default)
        for field in attrs.fields(ca.GenerationRequest)
    }


def _parameters(method: Any) -> dict[str, tuple[Any, Any]]:
    signature = inspect.signature(method)
    return {
        name: (p.annotation, _REQUIRED if p.default is inspect.Parameter.empty else p.default)
        for name, p in signature.parameters.items()
        if name != "self"
    }


def _as_taken(fields: dict[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
    taken = dict(fields)
    for name, (method_type, request_type) in _STORED_AS.items():
        assert taken[name][0] == request_type, f"{name} is no longer stored as {request_type}"
        taken[name] = (method_type, taken[name][1])
    return taken


def test_submit_takes_every_request_field_with_its_type_and_default() -> None:
    assert _parameters(ca.Client.submit) == _as_taken(_fields())


def test_generate_takes_every_request_field_but_the_journal_key_and_adds_a_deadline() -> None:
    parameters = _parameters(ca.Client.generate)
    expected = {n: v for n, v in _as_taken(_fields()).items() if n not in _SUBMIT_ONLY}
    assert {n: v for n, v in parameters.items() if n not in _GENERATE_ONLY} == expected
    assert set(parameters) - set(expected) == _GENERATE_ONLY


def test_model_and_prompt_are_positional_and_every_other_field_keyword_only() -> None:
    for method in (ca.Client.submit, ca.Client.generate):
        kinds = {n: p.kind for n, p in inspect.signature(method).parameters.items()}
        assert kinds.pop("self") is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert kinds.pop("model") is kinds.pop("prompt") is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert set(kinds.values()) == {inspect.Parameter.KEYWORD_ONLY}


async def test_generate_sends_every_field_it_is_given(
    client: ca.Client, server: FakeChuizi
) -> None:
    await client.generate(
        VEO,
        "a fox",
        duration=4,
        image="https://example.com/first.png",
        extra_body={"seed": 7},
        aspect_ratio="4:3",
        resolution="720p",
        reference_images=["https://example.com/ref.png"],
        video="https://example.com/source.mp4",
        watermark=False,
    )
    (post,) = [r for r in server.requests_log if r.method == "POST"]
    assert post.json == {
        "model": VEO,
        "prompt": "a fox",
        "duration": 4,
        "image_url": "https://example.com/first.png",
        "seed": 7,
        "aspect_ratio": "4:3",
        "resolution": "720p",
        "reference_image_urls": ["https://example.com/ref.png"],
        "video_url": "https://example.com/source.mp4",
        "watermark": False,
    }


def _options(function: Any, *skip: str) -> dict[str, tuple[Any, Any]]:
    """name -> (kind, default) of the parameters, ``skip`` left out."""
    return {
        name: (p.kind, p.default)
        for name, p in inspect.signature(function).parameters.items()
        if name not in skip
    }


def test_the_batch_methods_take_their_runners_options() -> None:
    assert _options(ca.Client.generate_many, "self") == _options(generate_many, "parts")
    assert _options(ca.Client.as_completed, "self") == {
        **_options(AsCompleted.__init__, "self", "parts"),
        # a required keyword of the runner, which the method defaults for its users
        "concurrency": (inspect.Parameter.KEYWORD_ONLY, None),
    }
