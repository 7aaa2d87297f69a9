"""The JSON bodies the simulated API answers with."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import attrs

from ._catalogue import SimModel
from ._records import SimGeneration

__all__ = [
    "Dialect",
    "StatusOptions",
    "billing_body",
    "check_video_url_at",
    "format_money",
    "key_info_body",
    "model_list_body",
    "status_body",
    "submit_body",
]

Dialect = Literal["guide", "reference"]

_QUEUED_FRACTION = 0.2
_CENT_FRACTION = Decimal("0.00000001")


def format_money(amount: Decimal) -> str:
    """Format dollars the API's way: a string with 8 decimals."""
    return format(amount.quantize(_CENT_FRACTION), "f")


@attrs.frozen(kw_only=True)
class StatusOptions:
    """How status answers are shaped."""

    dialect: Dialect
    speed: float
    media_base_url: str
    wrap_data: bool = False
    top_level_video_url: bool = False
    video_url_at: str = "output.video_url"
    cost_in_status: bool = True


# a dotted path of names, each maybe ``[0]`` (the first element of a one-element list)
_PATH = re.compile(r"[A-Za-z_]\w*(\[0\])?(\.[A-Za-z_]\w*(\[0\])?)*")


def check_video_url_at(path: str) -> str:
    """``path`` if it is a dotted path such as ``output.videos[0].url``, else ``ValueError``."""
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise ValueError(
            f"video_url_at must be a dotted path like 'output.videos[0].url': {path!r}"
        )
    return path


def _put(body: dict[str, Any], path: str, value: str) -> None:
    """Set ``value`` at ``path`` in ``body``; ``name[0]`` makes a one-element list."""
    *parents, leaf = path.split(".")
    node = body
    for part in parents:
        name, listed = part.removesuffix("[0]"), part.endswith("[0]")
        child: dict[str, Any] = {}
        if listed:
            node[name] = [child]
        else:
            existing = node.get(name)
            node[name] = child = existing if isinstance(existing, dict) else child
        node = child
    name = leaf.removesuffix("[0]")
    node[name] = [value] if leaf.endswith("[0]") else value


def submit_body(generation: SimGeneration, dialect: Dialect) -> dict[str, Any]:
    """The immediate answer to an accepted submission."""
    body: dict[str, Any] = {
        "id": generation.id,
        "status": "processing",
        "created": generation.created,
    }
    if dialect == "reference":
        body["model"] = generation.model
        body["task_id"] = generation.task_id
        body["x_chuizi"] = {"generation_id": generation.id}
    return body


def _status_value(generation: SimGeneration, options: StatusOptions, now: float) -> str:
    if options.dialect == "guide":
        return generation.status
    if generation.status == "completed":
        return "succeeded"
    if generation.status == "failed":
        return "failed"
    queued_for = generation.processing_time * _QUEUED_FRACTION / options.speed
    return "queued" if now < generation.submitted_at + queued_for else "processing"


def status_body(generation: SimGeneration, options: StatusOptions, now: float) -> dict[str, Any]:
    """The answer of a status route for ``generation`` at monotonic time ``now``."""
    body: dict[str, Any] = {
        "id": generation.id,
        "status": _status_value(generation, options, now),
        "created": generation.created,
    }
    if options.dialect == "reference":
        body["model"] = generation.model
    if generation.status == "completed":
        body["model"] = generation.model
        url = f"{options.media_base_url}/videos/{generation.id}.mp4"
        _put(body, "video_url" if options.top_level_video_url else options.video_url_at, url)
        body["usage"] = {"duration_seconds": generation.duration}
        body["x_chuizi"] = {
            "generation_id": generation.id,
            "cost": format_money(generation.cost),
            "latency_ms": generation.latency_ms,
        }
        if options.dialect == "reference" and not options.cost_in_status:
            del body["x_chuizi"]["cost"]  # "billing is recorded after the task completes"
    elif generation.status == "failed":
        body["error"] = dict(generation.error or {})
    return {"data": body} if options.wrap_data else body


def billing_body(generation: SimGeneration) -> dict[str, Any]:
    """The gateway's billing record of a generation: no status."""
    created_at = datetime.fromtimestamp(generation.created, UTC)
    return {
        "data": {
            "id": generation.id,
            "model": generation.model,
            "cost": format_money(generation.charged),
            "latency_ms": generation.latency_ms,
            "created_at": created_at.isoformat().replace("+00:00", "Z"),
        }
    }


def model_list_body(models: Iterable[SimModel]) -> dict[str, Any]:
    """The answer of ``GET /v1/models``."""
    return {
        "object": "list",
        "data": [
            {
                "id": model.id,
                "object": "model",
                "created": model.created,
                "owned_by": model.owned_by,
                "aliases": [model.alias] if model.alias != model.id else [],
                "max_duration": model.max_duration,
                "pricing": {"unit": "second", "per_second": str(model.price_per_second)},
            }
            for model in models
        ],
    }


def key_info_body(
    *,
    shape: Literal["data", "legacy"],
    key: str,
    balance: Decimal,
    rpm: int | None,
    allowed_models: list[str] | None,
    requests_today: int,
    generations: Iterable[SimGeneration],
    daily_limit: Decimal | None = None,
) -> dict[str, Any]:
    """The answer of ``GET /v1/key/info`` in either documented shape."""
    if shape == "legacy":
        charged = [generation.charged for generation in generations]
        return {
            "object": "key_info",
            "balance": format_money(balance),
            "currency": "USD",
            "rate_limit": {"rpm": rpm, "daily": None},
            "usage_today": {
                "requests": requests_today,
                "generations": len(charged),
                "cost": format_money(sum(charged, Decimal(0))),
            },
        }
    return {
        "data": {
            "key_prefix": key[:7],
            "name": "simulator",
            "balance": format_money(balance),
            "rpm_limit": rpm,
            "daily_limit": None if daily_limit is None else format_money(daily_limit),
            "allowed_models": allowed_models,
            "is_active": True,
        }
    }
