"""What an answer's ``X-RateLimit-*`` headers say: the rate window, and its reset in every form.

The provider does not document how ``X-RateLimit-Reset`` is written, so every form gateways use
is read (``parse_reset``). The request budget (``_budget``) acts on what is read here.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import re
import time
from collections.abc import Mapping

import attrs

from ._retries import header

__all__ = ["DOCUMENTED_WINDOW", "MAX_RESET", "RateWindow", "parse_rate_window", "parse_reset"]


@attrs.frozen
class RateWindow:
    """What one answer's ``X-RateLimit-*`` headers say, ``reset_in`` in seconds from now.

    ``reset_in`` is None when the answer names no reset, or one that cannot be read: the
    budget then assumes the documented 60 s sliding window.
    """

    limit: int | None
    remaining: int
    reset_in: float | None


DOCUMENTED_WINDOW = 60.0
"""The provider's rate windows: 60 s, sliding. Assumed when an answer names no reset."""
MAX_RESET = 3600.0
"""A reset further away than this is read as this far (a misread must never stall a client)."""

_EPOCH_SECONDS = 1e9  # 2001-09-09: a larger number is a date, a smaller one seconds from now
_EPOCH_MILLISECONDS = 1e11  # 1973 in milliseconds, or the year 5138 in seconds
_EPOCH_MICROSECONDS = 1e14
_DURATION = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:h|ms|m|s|us|\u00b5s|ns)", re.ASCII)
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "\u00b5s": 1e-6}
_DURATION_UNITS["ns"] = 1e-9


def parse_reset(raw: str, *, wall_now: float | None = None) -> float | None:
    """Seconds from now until an ``X-RateLimit-Reset`` value, or None when it cannot be read.

    Gateways write it every way: epoch seconds (``1764250000``, ``1764250000.25``), epoch
    milliseconds (``1764250000250``), seconds from now (``30``, ``0.25``), a duration as
    OpenAI-compatible gateways send (``1m30s``, ``250ms``, ``6m0s``, ``1h``), or an HTTP
    date. A number is a date when it is large (epoch seconds are ~1.7e9, milliseconds
    ~1.7e12), seconds from now otherwise. A reset in the past is now (0); one further than
    ``MAX_RESET`` is ``MAX_RESET``.
    """
    text = raw.strip()
    if not text:
        return None
    now = time.time() if wall_now is None else wall_now
    seconds: float | None
    try:
        number = float(text)
    except ValueError:
        seconds = _duration(text)
        if seconds is None:
            seconds = _date(text, now)
    else:
        if number >= _EPOCH_MICROSECONDS:
            seconds = number / 1e6 - now
        elif number >= _EPOCH_MILLISECONDS:
            seconds = number / 1e3 - now
        elif number >= _EPOCH_SECONDS:
            seconds = number - now
        else:
            seconds = number
    # float() reads "nan", "inf" and "1e400" too: no reset
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RESET)


def _duration(text: str) -> float | None:
    """Seconds of a Go-style duration (``1m30s``, ``250ms``, ``1.5s``), else None."""
    parts = _DURATION.findall(text)
    if not parts or "".join(parts) != text:
        return None
    total = 0.0
    for part in parts:
        number = part.rstrip("hmsuna\u00b5")
        total += float(number) * _DURATION_UNITS[part[len(number) :]]
    return total


def _date(text: str, now: float) -> float | None:
    """Seconds until an HTTP date (or an ISO 8601 one), else None."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp() - now


def parse_rate_window(
    headers: Mapping[str, str], *, wall_now: float | None = None
) -> RateWindow | None:
    """The rate window of an answer, or None when it carries no usable ``X-RateLimit-*``."""
    raw = header(headers, "x-ratelimit-remaining")
    remaining = None if raw is None else _count(raw)
    if remaining is None:
        return None
    limit = _count(header(headers, "x-ratelimit-limit"))
    reset_raw = header(headers, "x-ratelimit-reset")
    reset_in = None if reset_raw is None else parse_reset(reset_raw, wall_now=wall_now)
    return RateWindow(limit=limit, remaining=remaining, reset_in=reset_in)


def _count(raw: str | None) -> int | None:
    """A non-negative request count from a header, or None when absent or not a number."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return max(0, int(value)) if math.isfinite(value) else None
