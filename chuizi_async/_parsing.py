"""The one place where server answers are parsed into the values of ``_models``.

Parsing is forgiving about extra fields, envelopes (``{"data": {...}}``) and the two status
vocabularies of the provider's two documents, and strict about what it needs: a missing id is
a ``ResponseFormatError``, a done generation without a video URL an ``UnreadableVideo``, never
a ``KeyError``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ._exceptions import ResponseFormatError, UnreadableVideo, UnusableVideo
from ._models import (
    BillingRecord,
    ErrorInfo,
    GenerationState,
    GenerationStatus,
    KeyInfo,
    RemoteModel,
    Video,
)

__all__ = [
    "WrongRoute",
    "excerpt",
    "find_video_url",
    "is_web_url",
    "json_decimal",
    "json_int",
    "parse_billing",
    "parse_check",
    "parse_key_info",
    "parse_models",
    "parse_status",
    "parse_submission",
    "status_of",
]

logger = logging.getLogger("chuizi_async")

_DONE_WORDS = frozenset({"completed", "succeeded"})
_PENDING_WORDS = frozenset({"queued", "pending", "processing", "in_progress"})
_FAILED_WORDS = frozenset({"failed"})
_unknown_words_logged: set[str] = set()
_NOTHING: Mapping[str, Any] = {}  # an absent object's fields: read, never written


class WrongRoute(Exception):
    """A 200 answer with no recognisable status: this route does not report video status."""


# -- small, total accessors: any JSON shape in, a typed value or None out --------------------


def _dict(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def json_int(value: object) -> int | None:
    """An integer from any JSON value that reads as one (``"5"``, ``5.0``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 2**63:
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except (ValueError, OverflowError):
            return None
    return None


_EXACT = 2**53  # integers a float holds exactly


def _float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, (int, float, str)):
        return None
    try:
        result = float(value)
    except (ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def json_decimal(value: object) -> Decimal | None:
    """A finite ``Decimal`` from a JSON number or string (``"0.15000000"``), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, float):
            result = Decimal(repr(value))
        elif isinstance(value, (int, str)):
            result = Decimal(value)
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def _unwrap(raw: object) -> dict[str, Any]:
    """The answer's object, out of a ``{"data": {...}}`` envelope when it has one."""
    body = _dict(raw)
    if body is None:
        raise ResponseFormatError(f"expected a JSON object, got {type(raw).__name__}")
    inner = _dict(body.get("data"))
    if inner is not None and "status" not in body:
        return inner
    return body


_STATES: dict[str, GenerationState] = {
    **dict.fromkeys(_DONE_WORDS, "completed"),
    **dict.fromkeys(_FAILED_WORDS, "failed"),
    **dict.fromkeys(_PENDING_WORDS, "pending"),
}


def _state_of(word: str) -> GenerationState:
    state = _STATES.get(word)  # the documents' own spelling: the common case, one lookup
    if state is not None:
        return state
    lowered = word.lower()
    if lowered in _DONE_WORDS:
        return "completed"
    if lowered in _FAILED_WORDS:
        return "failed"
    if lowered not in _PENDING_WORDS and lowered not in _unknown_words_logged:
        _unknown_words_logged.add(lowered)
        logger.warning("unknown generation status %r: treated as still processing", word)
    return "pending"


def parse_status(raw: object, requested_id: str) -> GenerationStatus:
    """A status answer of either route, or ``WrongRoute`` when it reports no status.

    A final status word with no video URL (``UnreadableVideo``) or an unsafe one
    (``UnusableVideo``) is an error, raised with an excerpt of the answer.
    """
    found = parse_check(raw, requested_id)
    return status_of(found) if isinstance(found, Video) else found


def status_of(video: Video) -> GenerationStatus:
    """The status answer that ``parse_check`` read a done ``video`` from."""
    body = video.raw
    return GenerationStatus(video.id, body["status"], "completed", video.created, video, None, body)


def parse_check(raw: object, requested_id: str) -> GenerationStatus | Video:
    """``parse_status`` for the poller: the answer of a done generation is its ``Video``
    alone, any other its status. Called once per status check: the status of a done one is
    only built if someone asks (``status_of``), and the accessors are inlined where the
    common answer takes them.
    """
    body = raw if type(raw) is dict and "status" in raw else _unwrap(raw)
    word = body.get("status")
    if type(word) is not str or not word:  # JSON gives no subclass of str
        raise WrongRoute(f"no status in the answer for {requested_id}")
    state = _STATES.get(word) or _state_of(word)
    gen_id = body.get("id")
    if type(gen_id) is not str or not gen_id:
        gen_id = requested_id
    created = body.get("created")
    if type(created) is not int:  # not a bool either
        created = json_int(created)
    if state == "completed":
        return _parse_video(body, gen_id, created, raw, word)
    error = None
    if state == "failed":
        err = _dict(body.get("error")) or {}
        message = _str(err.get("message")) or _str(body.get("error")) or "generation failed"
        error = ErrorInfo(message, _str(err.get("type")))
    return GenerationStatus(gen_id, word, state, created, None, error, body)


def _first(value: object) -> dict[str, Any] | str | None:
    """The first video of a list: an object, or the URL itself."""
    if not isinstance(value, list) or not value:
        return None
    head = value[0]
    return head if isinstance(head, (dict, str)) else None


def _url_of(holder: dict[str, Any] | str | None) -> str | None:
    if isinstance(holder, str):
        return _str(holder)
    if holder is None:
        return None
    return _str(holder.get("video_url")) or _str(holder.get("url"))


def find_video_url(body: Mapping[str, Any]) -> str | None:
    """The video URL of a done answer (its ``data`` envelope unwrapped), or None.

    Looked for where the two documents and OpenAI-compatible gateways put it, in this order:
    ``output.video_url``, ``output.url``, ``video_url``, ``url``, the same two under ``data``,
    then the first of a list of videos (``output.videos``, ``output``, ``videos``, ``data``),
    a URL or an object with ``video_url`` or ``url``. Nowhere else: a guess could pick up a
    thumbnail or the source image.
    """
    output = body.get("output")
    data = body.get("data")
    return (
        _url_of(_dict(output))
        or _url_of(_dict(body))
        or _url_of(_dict(data))
        or _url_of(_first((_dict(output) or {}).get("videos")))
        or _url_of(_first(output))
        or _url_of(_first(body.get("videos")))
        or _url_of(_first(data))
    )


_KEY_LIKE = re.compile(r"\b((?:ck|sk)-|Bearer\s+)[A-Za-z0-9_\-]{6,}")
EXCERPT_CHARS = 200


def excerpt(raw: object, limit: int = EXCERPT_CHARS) -> str:
    """The start of an answer as compact JSON, for an error message; keys redacted."""
    try:
        text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = f"<{type(raw).__name__}>"
    text = _KEY_LIKE.sub(lambda m: m.group(1) + "***", text)
    return text if len(text) <= limit else text[:limit] + "..."


def _parse_video(
    body: dict[str, Any], gen_id: str, created: int | None, raw: object, word: str
) -> Video:
    output = body.get("output")
    url = output.get("video_url") if type(output) is dict else None
    if type(url) is not str or not url:  # not where the guide puts it: look everywhere
        url = find_video_url(body)
    if url is None:
        shown = excerpt(raw)
        raise UnreadableVideo(
            gen_id,
            f"reported {word!r} but the answer has no video URL where the documents put it "
            "(output.video_url, output.url, video_url, url, data, a list of videos); "
            f"the server sent: {shown}",
            excerpt=shown,
        )
    if not is_web_url(url):
        raise UnusableVideo(
            gen_id,
            f"the server gave a video URL that is not http(s): {url[:80]!r}",
            excerpt=excerpt(raw),
        )
    usage = body.get("usage")
    if type(usage) is not dict:
        usage = _NOTHING
    extra = body.get("x_chuizi")
    if type(extra) is not dict:
        extra = _NOTHING
    duration = usage.get("duration_seconds", body.get("duration"))
    if type(duration) is int and -_EXACT < duration < _EXACT:  # as the documents show it
        duration = float(duration)
    else:
        duration = _float(duration)
    cost = json_decimal(extra.get("cost", body.get("cost")))
    latency = extra.get("latency_ms", body.get("latency_ms"))
    if type(latency) is not int:
        latency = json_int(latency)
    model = body.get("model")
    if type(model) is not str or not model:
        model = None
    return Video(gen_id, url, model, duration, cost, latency, created, body)


def parse_billing(raw: object, *, requested_id: str) -> BillingRecord:
    """The billing record, or the guide's status answer on the same route: the cost either way."""
    body = _unwrap(raw)
    extra = _dict(body.get("x_chuizi")) or {}
    return BillingRecord(
        id=_str(body.get("id")) or requested_id,
        cost=json_decimal(extra.get("cost", body.get("cost"))),
        model=_str(body.get("model")),
        latency_ms=json_int(extra.get("latency_ms", body.get("latency_ms"))),
        raw=body,
    )


# http(s)://, maybe user info, then a host: a bracketed IPv6 literal or a name of printables
_WEB_URL = re.compile(
    r"https?://(?:[^/?#@]*@)?(?:\[[^\]/?#]+\]|[^:/?#@\s\x00-\x1f\x7f]+)(?=[:/?#]|\Z)", re.I
)


_web_origins: set[str] = set()  # "scheme://host" parts that _WEB_URL matched (bounded)


def is_web_url(url: str) -> bool:
    """``http(s)://`` and a host: what a browser or a download may follow.

    The expression reads no further than the character after the host, so a URL whose part
    before its path (``https://cdn.example``) matched once matches again: the videos of one
    CDN are checked by a set lookup (once for each answer, on the poller's path).
    """
    path = url.find("/", 8)  # after "https://"
    origin = url[:path] if path > 0 else None
    if origin is not None and origin in _web_origins:
        return True
    if _WEB_URL.match(url) is None:
        return False
    if origin is not None:
        if len(_web_origins) >= 256:
            _web_origins.clear()
        _web_origins.add(origin)
    return True


def parse_submission(raw: object) -> tuple[str, dict[str, Any]]:
    """The generation id of a submit answer (any documented shape), and the answer. Called
    once per submission: the common answer (an object with its status and id) is read
    without the accessors."""
    body = raw if type(raw) is dict and "status" in raw else _unwrap(raw)
    gen_id = body.get("id")
    if not isinstance(gen_id, str) or not gen_id:
        extra = _dict(body.get("x_chuizi")) or {}
        gen_id = _str(extra.get("generation_id"))
        if gen_id is None:
            raise ResponseFormatError("the submit answer has no generation id")
    return gen_id, body


def parse_key_info(raw: object) -> KeyInfo:
    """``/v1/key/info`` in the ``{"data": ...}`` shape or the older ``key_info`` object."""
    body = _unwrap(raw)
    limits = _dict(body.get("rate_limit")) or {}
    allowed = body.get("allowed_models")
    models = tuple(m for m in allowed if isinstance(m, str)) if isinstance(allowed, list) else None
    return KeyInfo(
        balance=json_decimal(body.get("balance")),
        rpm_limit=json_int(body.get("rpm_limit", limits.get("rpm"))),
        daily_limit=json_decimal(body.get("daily_limit")),
        daily_requests=json_int(limits.get("daily")),
        allowed_models=models,
        currency=_str(body.get("currency")),
        raw=body,
    )


def parse_models(raw: object) -> list[RemoteModel]:
    """The ``data`` list of ``/v1/models``; entries without an id are skipped."""
    body = _dict(raw)
    items = body.get("data") if body is not None else raw
    if not isinstance(items, list):
        raise ResponseFormatError("the model list answer has no 'data' list")
    models = []
    for item in items:
        entry = _dict(item)
        model_id = _str(entry.get("id")) if entry else None
        if entry is None or model_id is None:
            continue
        aliases = entry.get("aliases")
        models.append(
            RemoteModel(
                id=model_id,
                owned_by=_str(entry.get("owned_by")),
                aliases=tuple(a for a in aliases if isinstance(a, str))
                if isinstance(aliases, list)
                else (),
                pricing=_dict(entry.get("pricing")) or {},
                created=json_int(entry.get("created")),
                raw=entry,
            )
        )
    return models
