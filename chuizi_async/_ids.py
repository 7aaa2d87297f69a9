"""Fresh random ids: an ``X-Request-Id`` per attempt, an ``Idempotency-Key`` per submission.

Both come from the operating system's random source (``os.urandom``), read a block at a time:
one system call for a few hundred ids, not one an id. A submission makes two ids and a status
check one; a ``getrandom`` call each, run cold between requests, cost a submission ~2 µs of
the client's CPU and a check ~1.5 (``benchmarks/README.md``, tenth pass).

Each id is handed out once: a block's ids are taken from a list iterator, whose ``next`` the
interpreter runs whole (threads with event loops of their own never share one), and a forked
child drops the block it inherited, so that parent and child never send the same id.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

__all__ = ["new_idempotency_key", "new_request_id"]

_IDS_PER_BLOCK = 256


class _RandomHex:
    """Random hex strings of ``nbytes`` bytes each, cut from blocks of ``os.urandom``."""

    __slots__ = ("_nbytes", "_next")

    def __init__(self, nbytes: int) -> None:
        self._nbytes = nbytes
        self._next: Callable[[], str] = iter(()).__next__

    def __call__(self) -> str:
        try:
            return self._next()
        except StopIteration:
            return self._refill()

    def _refill(self) -> str:
        width = 2 * self._nbytes
        text = os.urandom(self._nbytes * _IDS_PER_BLOCK).hex()
        ids: Iterator[str] = iter([text[i : i + width] for i in range(0, len(text), width)])
        self._next = ids.__next__
        return self._next()

    def forget(self) -> None:
        """Drop the rest of the block (in a forked child: the parent hands those out)."""
        self._next = iter(()).__next__


_hex8 = _RandomHex(8)
_hex16 = _RandomHex(16)
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_hex8.forget)
    os.register_at_fork(after_in_child=_hex16.forget)


def new_request_id() -> str:
    """A fresh ``X-Request-Id`` (``req_`` and 16 hex digits), one per attempt."""
    return f"req_{_hex8()}"


def new_idempotency_key() -> str:
    """A fresh ``Idempotency-Key``: every retry of a submission (and a journal's resend of
    it) reuses it, so that a server that honours it bills one generation."""
    return f"chuizi-{_hex16()}"  # 128 random bits, as a uuid4 has 122
