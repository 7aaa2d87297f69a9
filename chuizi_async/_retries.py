"""Retry rules as pure functions, tested on their own; the client has the one loop using them."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

from multidict import CIMultiDict, CIMultiDictProxy

from ._exceptions import APIConnectionError, ChuiziError

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "MAX_RETRY_AFTER",
    "header",
    "parse_retry_after",
    "retry_delay",
    "should_retry",
    "should_retry_error",
]

BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
MAX_RETRY_AFTER = 120.0

_CASE_INSENSITIVE = (CIMultiDict, CIMultiDictProxy)  # aiohttp's headers: get() is enough
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def should_retry(status: int) -> bool:
    """Whether an answer with this status may succeed if sent again (402 never does)."""
    return status in _RETRY_STATUSES or status >= 500


def should_retry_error(exc: ChuiziError) -> bool:
    """Whether a request that raised this may succeed if sent again."""
    return isinstance(exc, APIConnectionError)


def retry_delay(
    attempt: int,
    *,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    ceiling = min(cap, base * (2 ** min(attempt, 32)))
    return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date).

    None when absent or unreadable; never negative; capped at ``MAX_RETRY_AFTER``.
    """
    millis = header(headers, "retry-after-ms")
    if millis is not None:
        try:
            return _clamp(float(millis) / 1000.0)
        except ValueError:
            pass
    value = header(headers, "retry-after")
    if value is None:
        return None
    try:
        return _clamp(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return _clamp(when.timestamp() - current)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's stripped value, whatever the case of its name (plain dicts included)."""
    value = headers.get(name)
    if value is not None:
        return value.strip()
    if isinstance(headers, _CASE_INSENSITIVE):
        return None
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate.strip()
    return None


def _clamp(seconds: float) -> float | None:
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
