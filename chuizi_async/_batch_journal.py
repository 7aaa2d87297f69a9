"""A batch's journal: the request keys, what an earlier run left, what this one records.

See ``_journal`` for the file and its entries; ``_batch`` for when each is written
(``JournaledRequest``: one request's, around its submission; ``settle``: its outcome).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator

import anyio

from ._error_rules import is_final_error, is_final_refusal
from ._exceptions import APIError, SubmissionUncertain
from ._generation import Generation, resolved
from ._ids import new_idempotency_key
from ._journal import Journal, request_fingerprint
from ._models import GenerationRequest, Video

__all__ = [
    "JournalLike",
    "JournaledRequest",
    "RequestKeys",
    "opened",
    "request_keys",
    "sent_before",
    "settle",
]

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


def sent_before(journal: Journal, request_key: str | None, *, safe: bool) -> bool:
    """Whether an earlier run sent this request and it is not to be sent again.

    Accepted (a generation id, maybe paid), or uncertain (it may have created one) and
    not to be resent: the journal answers for it, no submission goes out.
    """
    entry = journal.get(request_key) if request_key else None
    if entry is None:
        return False
    if entry.generation_id is not None or journal.settled(entry):
        return True
    return entry.state == "sent" and safe and not journal.resend_uncertain


class JournaledRequest:
    """One request of a journaled batch: what an earlier run left of it (``earlier``), and
    what this run records of its submission (``record_*``, ``before_wire``).

    ``safe``: the client retries submissions only when safe (``retry_submissions="safe"``),
    so a request is journaled as ``sent`` before it goes out, and an earlier run's ``sent``
    is uncertain.
    """

    __slots__ = ("_journal", "_request_key", "_safe", "before_wire", "entry", "went_out")

    def __init__(self, journal: Journal, request_key: str, *, safe: bool) -> None:
        self._journal = journal
        self._request_key = request_key
        self._safe = safe
        self.entry = journal.get(request_key)
        self.went_out = False  # journaled as sent: the server may have received it
        self.before_wire: Callable[[], Awaitable[None]] | None = self._record_sent if safe else None

    async def earlier(
        self,
        request: GenerationRequest,
        index: int,
        track: Callable[[str, GenerationRequest, int], Generation],
    ) -> Generation | None:
        """The handle an earlier run leaves, or None to submit the request.

        Settled: its journaled outcome, without a request. Accepted: its generation, followed
        by id (``track``). Stopped while on the wire (``sent``, when safe): ``SubmissionUncertain``,
        unless the journal resends those (``resend_uncertain``).
        """
        entry, journal = self.entry, self._journal
        if entry is None:
            return None
        if journal.settled(entry):
            await asyncio.sleep(0)  # nothing to send: let the others run (see _batch._work)
            outcome = entry.outcome(request)
            return resolved(entry.generation_id, outcome, request=request, index=index)
        if entry.generation_id is not None:
            await asyncio.sleep(0)
            return track(entry.generation_id, request, index)
        if entry.state == "sent" and self._safe and not journal.resend_uncertain:
            reason = "an earlier run stopped while it was on the wire"
            error = SubmissionUncertain(entry.idempotency_key, request, reason=reason)
            await journal.record_uncertain(self._request_key, error)
            return resolved(None, error, request=request, index=index)
        return None

    async def record_sending(self, model: str) -> str:
        """The ``Idempotency-Key`` to send with (an earlier run's, else a new one), journaled."""
        earlier = self.entry.idempotency_key if self.entry is not None else None
        idempotency_key = earlier or new_idempotency_key()
        await self._journal.record_sending(self._request_key, idempotency_key, model)
        return idempotency_key

    async def _record_sent(self) -> None:
        self.went_out = True
        await self._journal.record_sent(self._request_key)

    async def record_unsent(self, error: BaseException) -> None:
        """Not accepted: ``SubmissionUncertain`` is journaled, never to be sent again without
        being asked; any other error was an answer, or a cancellation where the submission was
        not shielded (before the wire, or off it after a 429): nothing was created."""
        if isinstance(error, SubmissionUncertain):
            with anyio.CancelScope(shield=True):
                await self._journal.record_uncertain(self._request_key, error)
        elif self.went_out:
            with anyio.CancelScope(shield=True):
                await self._journal.record_not_created(self._request_key)

    async def record_refused(self, error: APIError, model: str) -> None:
        """A refusal a rerun would meet too (``is_final_refusal``) is final."""
        if is_final_refusal(error, model):
            with anyio.CancelScope(shield=True):
                await self._journal.record_refused(self._request_key, error)

    async def record_accepted(self, generation_id: str) -> None:
        with anyio.CancelScope(shield=True):  # one short write: a stopped batch keeps it
            await self._journal.record_accepted(self._request_key, generation_id)


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
