"""The client's configuration: ``Limits``, the clock's ``time_scale``, the key and base URL,
and the checks of ``Client``'s other arguments (``poll``, ``retry_submissions``).

Like httpx's ``Timeout`` and ``Limits``: frozen values, checked when made, with errors that
name the argument. The poller's settings are ``PollPolicy`` (``_policy``); where the key may
go is decided in ``_auth``. The arguments these replaced keep working here, with a
``DeprecationWarning`` naming the new form (``resolve_limits``, ``resolve_time_scale``).
"""

from __future__ import annotations

import math
import os
import warnings
from urllib.parse import urlsplit

import attrs

from ._checks import check_count
from ._exceptions import InvalidRequest
from ._policy import PollPolicy
from ._retries import RETRY_SUBMISSIONS, RetrySubmissions

__all__ = [
    "DEFAULT_BASE_URL",
    "Limits",
    "Secret",
    "check_base_url",
    "check_retry_submissions",
    "check_time_scale",
    "resolve_api_key",
    "resolve_base_url",
    "resolve_limits",
    "resolve_poll",
    "resolve_time_scale",
]

DEFAULT_BASE_URL = "https://api.chuizi.ai/v1"

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class Secret:
    """The API key, kept out of every repr, str and log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


def resolve_api_key(api_key: str | None) -> Secret:
    """``Client(api_key=...)``, else ``$CHUIZI_API_KEY``; refused when neither is set."""
    api_key = api_key if api_key is not None else os.environ.get("CHUIZI_API_KEY")
    if not api_key or not api_key.strip():
        raise InvalidRequest(
            "no API key: pass Client(api_key=...) or set the CHUIZI_API_KEY environment variable"
        )
    return Secret(api_key.strip())


def resolve_base_url(base_url: str | None, allow_insecure_http: bool) -> str:
    """``Client(base_url=...)``, else ``$CHUIZI_BASE_URL``, else ``DEFAULT_BASE_URL``; checked."""
    base_url = base_url or os.environ.get("CHUIZI_BASE_URL") or DEFAULT_BASE_URL
    return check_base_url(base_url, allow_insecure_http)


def check_base_url(base_url: str, allow_insecure_http: bool) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidRequest(f"base_url must be an https:// URL, not {base_url!r}")
    if parts.scheme == "http" and not allow_insecure_http and parts.hostname not in _LOOPBACK:
        raise InvalidRequest(
            f"base_url {base_url!r} uses plain http to a remote host: https is required to keep "
            "the API key secret (pass allow_insecure_http=True only for a trusted network)"
        )
    return base_url.rstrip("/")


def _connections(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    check_count("Limits(max_connections=...)", value, minimum=1)


def _rate(instance: object, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    if value is None:
        return
    if not _positive_number(value):
        raise InvalidRequest(
            "Limits(max_requests_per_second=...) must be a number of requests per second > 0, "
            f"or None for no cap of your own, not {value!r}"
        )


def _positive_number(value: object) -> bool:
    """A finite int or float > 0 (a bool is not a number)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@attrs.frozen(kw_only=True)
class Limits:
    """How much of the network and of the API one client may use at once.

    ::

        client = chuizi_async.Client(limits=chuizi_async.Limits(max_requests_per_second=2))

    :param max_connections: connections open at once: the default transport's pool, and the
        workers that send a batch's submissions (``generate_many``, ``as_completed``).
    :param max_requests_per_second: a cap on every request of the client (submissions,
        status checks, account calls), spaced evenly, when you know one up front. None: the
        client paces itself from the server's ``X-RateLimit-*`` headers and its 429s alone.
    """

    max_connections: int = attrs.field(default=64, validator=_connections)
    max_requests_per_second: float | None = attrs.field(default=None, validator=_rate)


def resolve_poll(poll: object) -> PollPolicy:
    """``Client(poll=...)``: a ``PollPolicy``, or the default one for None."""
    if poll is None:
        return PollPolicy()
    if not isinstance(poll, PollPolicy):
        raise InvalidRequest(f"Client(poll=...) must be a PollPolicy, not {poll!r}")
    return poll


def check_retry_submissions(value: object) -> RetrySubmissions:
    """``Client(retry_submissions=...)``: ``"idempotent"`` or ``"safe"``."""
    if value not in RETRY_SUBMISSIONS:
        raise InvalidRequest(f"retry_submissions must be 'idempotent' or 'safe', not {value!r}")
    return value


def check_time_scale(value: object) -> float:
    """``Client(time_scale=...)``: a finite number > 0 (1 is real time)."""
    if not _positive_number(value):
        raise InvalidRequest(
            "Client(time_scale=...) must be a number > 0 (1: real time; N: every delay the "
            f"client chooses is N times shorter, to match FakeChuizi(speed=N)), not {value!r}"
        )
    return float(value)  # type: ignore[arg-type]


def resolve_limits(
    limits: Limits | None, max_connections: int | None, poll_rate: float | None
) -> Limits:
    """The client's ``Limits``, from ``limits=`` or the deprecated arguments it replaces:
    ``Client(max_connections=...)`` (warned here) and ``PollPolicy(max_requests_per_second=...)``
    (warned when the policy was made)."""
    if limits is not None and not isinstance(limits, Limits):
        raise InvalidRequest(f"Client(limits=...) must be a Limits, not {limits!r}")
    if max_connections is not None:
        warnings.warn(
            "Client(max_connections=...) is deprecated: "
            "pass Client(limits=Limits(max_connections=...))",
            DeprecationWarning,
            stacklevel=3,
        )
        if limits is not None:
            raise InvalidRequest(
                "Client(max_connections=...) and Client(limits=...) were both given: "
                "pass Client(limits=Limits(max_connections=...)) alone"
            )
        check_count("Client(max_connections=...)", max_connections, minimum=1)
        limits = Limits(max_connections=max_connections)
    limits = limits if limits is not None else Limits()
    if poll_rate is not None:
        if limits.max_requests_per_second is not None:
            raise InvalidRequest(
                "PollPolicy(max_requests_per_second=...) and Limits(max_requests_per_second=...) "
                "were both given: pass Client(limits=Limits(max_requests_per_second=...)) alone"
            )
        limits = attrs.evolve(limits, max_requests_per_second=poll_rate)
    return limits


def resolve_time_scale(time_scale: float, poll_time_scale: float | None) -> float:
    """``Client(time_scale=...)``, or the deprecated ``PollPolicy(time_scale=...)`` (warned
    when the policy was made) when the client's is left at 1."""
    scale = check_time_scale(time_scale)
    if poll_time_scale is None or poll_time_scale == scale:
        return scale
    if scale != 1.0:
        raise InvalidRequest(
            f"PollPolicy(time_scale={poll_time_scale!r}) and Client(time_scale={time_scale!r}) "
            "disagree: pass Client(time_scale=...) alone"
        )
    return poll_time_scale
