"""Fresh random ids: an ``X-Request-Id`` per attempt, an ``Idempotency-Key`` per submission.

Both come from the operating system's random source (``os.urandom``), read a block at a time:
one system call for a few hundred ids, not one an id. A submission makes two ids and a status
check one: a ``getrandom`` call each, which ``perf`` put at ~1.5 µs cold between requests
(``timeit``: 0.3), raw aiohttp paying none (``benchmarks/README.md``, tenth pass).

Each id is handed out once: a block's ids are taken from a list iterator, whose ``next`` the
interpreter runs whole (threads with event loops of their own never share one), and a forked
child drops the block it inherited, so that parent and child never send the same id.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

__all__ = ["new_idempotency_key", "new_request_id"]

_IDS_PER_BLOCK = 256


class _Ids:
    """Ids of one kind, ``prefix`` and ``nbytes`` random bytes in hex, cut from blocks of
    ``os.urandom``. ``next()`` is the C ``__next__`` of the current block's list iterator:
    no Python frame an id; ``StopIteration`` when the block is used up (then ``refill()``)."""

    __slots__ = ("_nbytes", "_prefix", "next")

    def __init__(self, prefix: str, nbytes: int) -> None:
        self._prefix = prefix
        self._nbytes = nbytes
        self.next: Callable[[], str] = iter(()).__next__

    def refill(self) -> str:
        """A new block; its first id."""
        width, prefix = 2 * self._nbytes, self._prefix
        text = os.urandom(self._nbytes * _IDS_PER_BLOCK).hex()
        block = [prefix + text[i : i + width] for i in range(0, len(text), width)]
        ids: Iterator[str] = iter(block)
        self.next = ids.__next__
        return self.next()

    def forget(self) -> None:
        """Drop the rest of the block (in a forked child: the parent hands those out)."""
        self.next = iter(()).__next__


_request_ids = _Ids("req_", 8)
_idempotency_keys = _Ids("chuizi-", 16)  # 128 random bits, as a uuid4 has 122
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_request_ids.forget)
    os.register_at_fork(after_in_child=_idempotency_keys.forget)


def new_request_id() -> str:
    """A fresh ``X-Request-Id`` (``req_`` and 16 hex digits), one per attempt."""
    try:
        return _request_ids.next()
    except StopIteration:
        return _request_ids.refill()


def new_idempotency_key() -> str:
    """A fresh ``Idempotency-Key`` (``chuizi-`` and 32 hex digits): every retry of a
    submission (and a journal's resend of it) reuses it, so that a server that honours it
    bills one generation."""
    try:
        return _idempotency_keys.next()
    except StopIteration:
        return _idempotency_keys.refill()
