"""``argparse`` types shared by the ``chuizi`` command and the standalone simulator."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

__all__ = ["money", "positive_float", "positive_int"]


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def money(text: str) -> Decimal:
    """An amount in US dollars >= 0 (``25``, ``$25.50``), exact."""
    try:
        value = Decimal(text.strip().removeprefix("$"))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount in US dollars: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be an amount >= 0, not {text}")
    return value
