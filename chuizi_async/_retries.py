"""Retry rules as pure functions, tested on their own; the client has the one loop using them.

What an error means (retryable, a submission uncertain) is decided in ``_error_rules``; here:
statuses, headers, backoff and how often a call may go again.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from typing import Literal

from multidict import CIMultiDict, CIMultiDictProxy

from ._error_rules import is_retryable
from ._exceptions import APIConnectError, APIError, APITimeoutError, ChuiziError

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "MAX_RETRY_AFTER",
    "MAX_TIMEOUTS",
    "RATE_LIMIT_PATIENCE",
    "RETRY_SUBMISSIONS",
    "RetrySubmissions",
    "header",
    "parse_retry_after",
    "retry_delay",
    "should_retry",
    "should_retry_submission",
    "silent_too_often",
    "waits_out",
]

BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
MAX_RETRY_AFTER = 120.0
MAX_TIMEOUTS = 3
"""Attempts of one call that may time out: a server silent that often is not answering, and a
silent server then costs ``3 x timeout`` (30 s by default), not ``max_retries + 1`` times it."""

RATE_LIMIT_PATIENCE = 300.0
"""Seconds of 429s a call waits out, however many attempts that takes, before it raises
``RateLimitError``: five of the documented one-minute windows. A 429 says *when*, not whether:
a batch sharing its key with other processes, none of them told the limit in advance, would
otherwise spend a submission's attempts inside one spent window."""

_CASE_INSENSITIVE = (CIMultiDict, CIMultiDictProxy)  # aiohttp's headers: get() is enough
# the provider's table calls these retryable; 408: the request never arrived whole
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

RetrySubmissions = Literal["idempotent", "safe"]
RETRY_SUBMISSIONS: tuple[RetrySubmissions, ...] = ("idempotent", "safe")


def should_retry(status: int) -> bool:
    """Whether an answer with this status may succeed if sent again (402 never does)."""
    return status in _RETRY_STATUSES or status >= 500


def silent_too_often(exc: ChuiziError, timeouts: int) -> bool:
    """Whether ``exc`` is a timeout that makes ``timeouts`` of one call: enough, stop there."""
    return isinstance(exc, APITimeoutError) and timeouts >= MAX_TIMEOUTS


def waits_out(refused_for: float, time_scale: float = 1.0) -> bool:
    """Whether a 429 that comes ``refused_for`` seconds after a call's first is a wait, not an
    attempt spent (``time_scale``: the client's clock runs that much faster)."""
    return refused_for * time_scale < RATE_LIMIT_PATIENCE


def should_retry_submission(error: ChuiziError, mode: RetrySubmissions) -> bool:
    """Whether a submission (a POST that creates and bills) that ended in ``error`` may go again.

    ``"idempotent"``: whenever any request would, trusting the ``Idempotency-Key``.
    ``"safe"``: only when nothing can have been created: no connection was made, or the
    server answered with a status its table calls retryable (408, 429, 500, 502, 503, 504).
    """
    if isinstance(error, APIError):
        if mode == "safe":
            return error.status_code in _RETRY_STATUSES
        return should_retry(error.status_code)
    if mode == "safe":
        return isinstance(error, APIConnectError)
    return is_retryable(error)


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
