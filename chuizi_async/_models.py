"""Value classes that cross the API: a request, and what the server answers about it.

Everything here is frozen: a parsed answer never changes. The answers are parsed in
``_parsing``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

import attrs

from ._exceptions import InvalidRequest

__all__ = [
    "BillingRecord",
    "ErrorInfo",
    "GenerationRequest",
    "GenerationState",
    "GenerationStatus",
    "ImageInput",
    "KeyInfo",
    "RemoteModel",
    "Video",
]

ImageInput = str | bytes | os.PathLike[str]
GenerationState = Literal["pending", "completed", "failed"]


def _freeze_images(value: Sequence[ImageInput] | None) -> tuple[ImageInput, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        return (value,)
    return tuple(value)


@attrs.frozen(eq=False)
class GenerationRequest:
    """One video to generate: what ``submit`` takes, as a value (for batches and journals).

    ``key`` names the request in a batch journal; it is not sent. ``extra_body`` is merged
    last into the JSON body, for fields this library does not know yet.
    """

    model: str
    prompt: str
    duration: int | None = None
    image: ImageInput | None = None
    key: str | None = None
    extra_body: Mapping[str, Any] | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    reference_images: tuple[ImageInput, ...] | None = attrs.field(
        default=None, converter=_freeze_images
    )
    video: str | None = None
    watermark: bool | None = None

    @classmethod
    def coerce(cls, value: GenerationRequest | Mapping[str, Any]) -> GenerationRequest:
        """A request from itself or from a mapping with the same keys; unknown keys are refused."""
        if isinstance(value, GenerationRequest):
            return value
        if not isinstance(value, Mapping):
            raise InvalidRequest(
                f"a request must be a GenerationRequest or a mapping, not {type(value).__name__}"
            )
        known = _REQUEST_FIELDS
        if not known.issuperset(value):
            unknown = sorted(k for k in value if k not in known)
            raise InvalidRequest(
                f"unknown request field(s) {', '.join(map(repr, unknown))}; known fields are "
                f"{', '.join(sorted(known))} (put other API fields in extra_body)"
            )
        if "model" not in value or "prompt" not in value:
            missing = [name for name in ("model", "prompt") if name not in value]
            raise InvalidRequest(f"a request needs {' and '.join(missing)}")
        return cls(**value)


_REQUEST_FIELDS = frozenset(a.name for a in attrs.fields(GenerationRequest))


@attrs.frozen
class ErrorInfo:
    """The error the server reported for a failed generation."""

    message: str
    type: str | None = None


@attrs.frozen
class Video:
    """A finished video. ``url`` is public and permanent; ``raw`` is the server's whole answer.

    Fields may be given by position, in this order (the parser does: keyword arguments cost
    each status check ~0.3 us an object more).
    """

    id: str
    url: str
    model: str | None = None
    duration_seconds: float | None = None
    cost: Decimal | None = None
    latency_ms: int | None = None
    created: int | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class BillingRecord:
    """The gateway's billing record of one generation (``GET /v1/generation?id=``).

    The API reference records the cost once the task completes: ``cost`` is None while the
    record (or a status answer in its place, on a deployment that follows the guide) has none.
    """

    id: str
    cost: Decimal | None = None
    model: str | None = None
    latency_ms: int | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen
class GenerationStatus:
    """One status answer. ``status`` is the server's own word, ``state`` its meaning.

    Fields may be given by position, in this order (as ``Video``'s).
    """

    id: str
    status: str
    state: GenerationState
    created: int | None = None
    video: Video | None = None
    error: ErrorInfo | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def done(self) -> bool:
        return self.state != "pending"


@attrs.frozen(kw_only=True)
class KeyInfo:
    """The key's balance and limits (``GET /v1/key/info``), from either documented shape.

    ``daily_limit`` is the daily spend cap in US dollars (the ``data`` shape's);
    ``daily_requests`` the older shape's ``rate_limit.daily``, a number of requests a day.
    """

    balance: Decimal | None
    rpm_limit: int | None = None
    daily_limit: Decimal | None = None
    daily_requests: int | None = None
    allowed_models: tuple[str, ...] | None = None
    currency: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class RemoteModel:
    """A model this key may call, as ``GET /v1/models`` lists it."""

    id: str
    owned_by: str | None = None
    aliases: tuple[str, ...] = ()
    pricing: Mapping[str, Any] = attrs.field(factory=dict, eq=False)
    created: int | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)
