"""A batch's journal: the request keys, what an earlier run left, what this one records.

See ``_journal`` for the file and its entries; ``_batch`` for when each is written.
"""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Iterable, Iterator

import anyio

from ._error_rules import is_final_error
from ._generation import Generation
from ._journal import Journal, request_fingerprint
from ._models import GenerationRequest, Video

__all__ = ["JournalLike", "RequestKeys", "opened", "request_keys", "sent_before", "settle"]

JournalLike = Journal | str | os.PathLike[str]


@contextlib.contextmanager
def opened(journal: JournalLike | None) -> Iterator[Journal | None]:
    """The journal to use: the one given, or one opened (and closed) here from a path."""
    if journal is None or isinstance(journal, Journal):
        yield journal
        return
    with Journal(journal) as opened:
        yield opened


class RequestKeys:
    """The request key of each request, in input order: its ``key``, else a digest of what
    it asks for and which occurrence of that it is (``<digest>-1``, ``<digest>-2``)."""

    def __init__(self) -> None:
        self._occurrences: collections.Counter[str] = collections.Counter()

    def request_key(self, request: GenerationRequest) -> str:
        if request.key is not None:
            return request.key
        fingerprint = request_fingerprint(request)
        self._occurrences[fingerprint] += 1
        return f"{fingerprint}-{self._occurrences[fingerprint]}"


def request_keys(requests: Iterable[GenerationRequest]) -> list[str]:
    """The request key a journaled batch of ``requests`` gives each (see ``RequestKeys``)."""
    keys = RequestKeys()
    return [keys.request_key(request) for request in requests]


def sent_before(journal: Journal | None, request_key: str | None, *, safe: bool) -> bool:
    """Whether an earlier run sent this request and it is not to be sent again.

    Accepted (a generation id, maybe paid), or uncertain (it may have created one) and
    not to be resent: the journal answers for it, no submission goes out.
    """
    entry = journal.get(request_key) if journal is not None and request_key else None
    if entry is None or journal is None:
        return False
    if entry.generation_id is not None or journal.settled(entry):
        return True
    return entry.state == "sent" and safe and not journal.resend_uncertain


async def settle(journal: Journal | None, handle: Generation, request_key: str | None) -> None:
    """Wait for the outcome (the request holds its place until then) and journal it."""
    with contextlib.suppress(Exception):
        await handle.wait()
    if journal is None or request_key is None or handle.id is None or not handle.done():
        return
    outcome = handle.exception() or handle.result()
    entry = journal.get(request_key)
    if entry is not None and entry.final:
        return
    if isinstance(outcome, Video) or is_final_error(outcome):
        with anyio.CancelScope(shield=True):
            await journal.record_outcome(request_key, outcome)
