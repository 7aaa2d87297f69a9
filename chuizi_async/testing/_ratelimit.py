"""Sliding-window rate limiting for the simulator."""

from __future__ import annotations

import email.utils
import math
import time
from collections import deque
from typing import Literal, TypeVar

import attrs

from ._errors import ApiError

__all__ = [
    "RESET_FORMATS",
    "RateLimit",
    "RateLimiter",
    "ResetFormat",
    "format_reset",
    "format_seconds",
]

ResetFormat = Literal["delta", "epoch", "epoch_ms", "duration", "http_date", "absent"]
RESET_FORMATS: tuple[ResetFormat, ...] = (
    "delta",
    "epoch",
    "epoch_ms",
    "duration",
    "http_date",
    "absent",
)
_K = TypeVar("_K")


def format_seconds(seconds: float) -> str:
    """Format a duration as a short decimal string: ``"0.25"``, ``"1"``, ``"0"``."""
    text = f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".")
    return text or "0"


@attrs.frozen(kw_only=True)
class RateLimit:
    """Sliding-window limits enforced per API key.

    ``window`` is in real seconds (``speed`` does not compress it). ``limit`` counts every API
    request of the key, status checks included; ``per_model`` counts submissions per model.
    Rejected requests do not count.

    ``reset_format`` is how ``X-RateLimit-Reset`` is written, since the provider does not say:
    ``"delta"`` seconds from now (``"0.734"``), ``"epoch"`` seconds (``"1764250000.734"``),
    ``"epoch_ms"`` milliseconds (``"1764250000734"``), ``"duration"`` as OpenAI-compatible
    gateways do (``"734ms"``, ``"1m30s"``, ``"6m0s"``), ``"http_date"`` (whole seconds, rounded
    up), or ``"absent"``: no reset header at all (``-Limit`` and ``-Remaining`` only).
    """

    limit: int
    window: float = 60.0
    per_model: int | None = None
    headers: bool = True
    retry_after: bool = True
    reset_format: ResetFormat = "delta"


@attrs.define
class _Window:
    limit: int
    length: float
    _times: deque[float] = attrs.field(factory=deque)

    def prune(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.length:
            self._times.popleft()

    def is_full(self) -> bool:
        return len(self._times) >= self.limit

    def add(self, now: float) -> None:
        self._times.append(now)

    def remaining(self) -> int:
        return max(self.limit - len(self._times), 0)

    def reset_in(self, now: float) -> float:
        """Seconds until the oldest request leaves the window."""
        return self._times[0] + self.length - now if self._times else 0.0

    def retry_in(self, now: float) -> float:
        """Seconds until a slot frees."""
        excess = len(self._times) - self.limit
        if excess < 0:
            return 0.0
        return self._times[excess] + self.length - now


@attrs.define
class RateLimiter:
    """The windows of every key (and model), checking and recording requests."""

    config: RateLimit
    _keys: dict[str, _Window] = attrs.field(factory=dict)
    _models: dict[tuple[str, str], _Window] = attrs.field(factory=dict)

    def admit(self, key: str, model: str | None, now: float) -> dict[str, str]:
        """Record a request, returning the headers to send; raise a 429 :class:`ApiError`."""
        window = self._window(self._keys, key, self.config.limit, now)
        model_window = None
        if model is not None and self.config.per_model is not None:
            model_window = self._window(self._models, (key, model), self.config.per_model, now)
        if window.is_full():
            raise self._rejection(window, now, "Rate limit exceeded for this key")
        if model_window is not None and model_window.is_full():
            raise self._rejection(model_window, now, f"Rate limit exceeded for model {model}")
        window.add(now)
        if model_window is not None:
            model_window.add(now)
        return self._headers(window, now)

    def _window(self, windows: dict[_K, _Window], key: _K, limit: int, now: float) -> _Window:
        window = windows.get(key)
        if window is None:
            window = windows[key] = _Window(limit, self.config.window)
        window.prune(now)
        return window

    def _rejection(self, window: _Window, now: float, message: str) -> ApiError:
        headers = self._headers(window, now)
        if self.config.retry_after:
            headers["Retry-After"] = format_seconds(window.retry_in(now))
        return ApiError(
            429, message, "rate_limit_error", code="rate_limit_exceeded", headers=headers
        )

    def _headers(self, window: _Window, now: float) -> dict[str, str]:
        if not self.config.headers:
            return {}
        headers = {
            "X-RateLimit-Limit": str(window.limit),
            "X-RateLimit-Remaining": str(window.remaining()),
        }
        reset = format_reset(window.reset_in(now), self.config.reset_format, time.time())
        if reset is not None:
            headers["X-RateLimit-Reset"] = reset
        return headers


def format_reset(seconds: float, reset_format: ResetFormat, wall_now: float) -> str | None:
    """``X-RateLimit-Reset`` for a reset ``seconds`` from ``wall_now`` (None: no header)."""
    seconds = max(seconds, 0.0)
    if reset_format == "epoch":
        return f"{wall_now + seconds:.3f}"
    if reset_format == "epoch_ms":
        return str(math.ceil((wall_now + seconds) * 1000))
    if reset_format == "duration":
        return _duration(seconds)
    if reset_format == "http_date":
        return email.utils.formatdate(math.ceil(wall_now + seconds), usegmt=True)
    if reset_format == "absent":
        return None
    return format_seconds(seconds)


def _duration(seconds: float) -> str:
    """Go's duration style, as OpenAI writes it: ``734ms``, ``1.5s``, ``1m30s``, ``6m0s``."""
    millis = math.ceil(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms"
    minutes, rest = divmod(millis, 60_000)
    text = format_seconds(rest / 1000) + "s"
    return f"{minutes}m{text}" if minutes else text
