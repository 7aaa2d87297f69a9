"""Fault injection: the ways a real gateway and its proxies misbehave."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Literal

import attrs

__all__ = ["FAULT_KINDS", "FaultKind", "Faults", "pick_fault"]

FaultKind = Literal[
    "rate_limited",
    "server_error",
    "bad_gateway_html",
    "connection_reset",
    "truncated_json",
    "slow",
    "drop_after_create",
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "rate_limited",
    "server_error",
    "bad_gateway_html",
    "connection_reset",
    "truncated_json",
    "slow",
    "drop_after_create",
)

BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _probability(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], got {value!r}")


def _numbers(value: Iterable[int]) -> frozenset[int]:
    return frozenset(value)


@attrs.frozen(kw_only=True)
class Faults:
    """Per-request probabilities of each fault; at most one fault hits a request.

    ``drop_after_create`` only applies to submissions: the generation is created and charged,
    then the connection is reset without an answer. ``drop_after_create_at`` does the same,
    deterministically, to the submissions of these numbers (1: the first POST the server
    received), whatever the probabilities. ``retry_after`` is the ``Retry-After`` sent with an
    injected 429 (``None`` omits it); ``slow_seconds`` the real delay of ``slow``.
    """

    rate_limited: float = attrs.field(default=0.0, validator=_probability)
    server_error: float = attrs.field(default=0.0, validator=_probability)
    bad_gateway_html: float = attrs.field(default=0.0, validator=_probability)
    connection_reset: float = attrs.field(default=0.0, validator=_probability)
    truncated_json: float = attrs.field(default=0.0, validator=_probability)
    slow: float = attrs.field(default=0.0, validator=_probability)
    drop_after_create: float = attrs.field(default=0.0, validator=_probability)
    drop_after_create_at: frozenset[int] = attrs.field(factory=frozenset, converter=_numbers)
    retry_after: float | None = 1.0
    slow_seconds: float = 5.0


def pick_fault(
    faults: Faults | None, rng: random.Random, *, submission: bool, number: int = 0
) -> FaultKind | None:
    """Draw each fault independently and return the first that hits, if any.

    ``number``: of a submission, its count among the server's submissions (from 1).
    """
    if faults is None:
        return None
    if submission and number in faults.drop_after_create_at:
        return "drop_after_create"
    hit: FaultKind | None = None
    for kind in FAULT_KINDS:
        if kind == "drop_after_create" and not submission:
            continue
        probability: float = getattr(faults, kind)
        if probability > 0.0 and rng.random() < probability and hit is None:
            hit = kind
    return hit
