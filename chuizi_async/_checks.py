"""Checks of the numbers a caller configures (seconds, counts), before anything is sent.

Each refusal is an ``InvalidRequest`` (also a ``ValueError``) naming the argument, the value
given and what is allowed: a zero pool or a NaN timeout would otherwise hang or spin later,
far from the mistake.
"""

from __future__ import annotations

import math

from ._exceptions import InvalidRequest

__all__ = ["check_count", "check_seconds"]


def check_seconds(
    name: str, value: object, *, allow_zero: bool = False, allow_inf: bool = False
) -> float:
    """``value`` as a number of seconds: a finite real number > 0 (or >= 0, or inf)."""
    number = (
        float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    )
    if (
        number is None
        or math.isnan(number)
        or (math.isinf(number) and not (allow_inf and number > 0))
        or number < 0
        or (number == 0 and not allow_zero)
    ):
        allowed = ">= 0" if allow_zero else "> 0"
        raise InvalidRequest(
            f"{name} must be a number of seconds {allowed}"
            f"{' (or None)' if allow_inf else ''}, not {value!r}"
        )
    return number


def check_count(name: str, value: object, *, minimum: int) -> int:
    """``value`` as a whole number >= ``minimum`` (a bool is not a count)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidRequest(f"{name} must be an integer >= {minimum}, not {value!r}")
    return value
