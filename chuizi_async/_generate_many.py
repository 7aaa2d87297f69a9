"""``generate_many``: a batch's results in input order."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import anyio

from ._batch import BatchParts, BatchSubmitter, RequestLike
from ._batch_journal import JournalLike, opened
from ._exceptions import InvalidRequest
from ._generation import Generation
from ._journal import Journal
from ._models import GenerationRequest, Video
from ._validation import validate

__all__ = ["generate_many"]


def _prevalidate(items: list[RequestLike]) -> None:
    """Refuse the whole batch before any money is spent if one request cannot be right."""
    for index, item in enumerate(items):
        try:
            validate(GenerationRequest.coerce(item))
        except InvalidRequest as exc:
            raise InvalidRequest(f"request {index}: {exc}") from None


async def generate_many(
    parts: BatchParts,
    requests: Iterable[RequestLike],
    *,
    concurrency: int | None = None,
    return_exceptions: bool = False,
    journal: JournalLike | None = None,
    max_cost: Decimal | None = None,
    fetch_costs: bool = False,
) -> list[Video | BaseException]:
    """Generate every request; results in input order.

    With ``return_exceptions=True`` each failure takes its place in the list. Without it,
    the whole batch is validated first (``InvalidRequest`` names the index, nothing sent),
    and the first error raises as soon as it happens: no further request is submitted, and
    the generations already accepted **stay tracked** by the client (``client.pending``);
    the error's notes list their ids.
    """
    with opened(journal) as journal_opened:
        return await _generate_many(
            parts,
            list(requests),
            concurrency,
            return_exceptions,
            journal_opened,
            max_cost,
            fetch_costs,
        )


async def _generate_many(
    parts: BatchParts,
    items: list[RequestLike],
    concurrency: int | None,
    return_exceptions: bool,
    journal: Journal | None,
    max_cost: Decimal | None,
    fetch_costs: bool,
) -> list[Video | BaseException]:
    if not return_exceptions:
        _prevalidate(items)
    results: list[Video | BaseException | None] = [None] * len(items)
    remaining = len(items)
    first_error: BaseException | None = None
    finished = anyio.Event()

    def on_done(handle: Generation) -> None:
        nonlocal remaining, first_error
        assert handle.index is not None
        error = handle.exception()
        results[handle.index] = error if error is not None else handle.result()
        remaining -= 1
        if error is not None and not return_exceptions and first_error is None:
            first_error = error
            finished.set()
        if remaining == 0:
            finished.set()

    submitter = BatchSubmitter(
        parts,
        items,
        concurrency=concurrency,
        on_handle=lambda handle: handle.add_done_callback(on_done),
        journal=journal,
        max_cost=max_cost,
        fetch_costs=fetch_costs,
    )
    if items:
        async with anyio.create_task_group() as tg:
            tg.start_soon(submitter.run)
            await finished.wait()
            tg.cancel_scope.cancel()
    if first_error is not None:
        still = [h.id for h in submitter.accepted if not h.done() and h.id is not None]
        if still:
            first_error.add_note(
                f"{len(still)} generation(s) of this batch were accepted and are still tracked "
                f"by the client (client.pending): {', '.join(still)}"
            )
        raise first_error
    return [r for r in results if r is not None]
