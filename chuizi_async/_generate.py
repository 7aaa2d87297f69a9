"""``generate()``: one submission, awaited to its video within one deadline.

The deadline covers the submission and the wait, and says which of the two it ran out in:
before the server answered the submission (no id to give; a submission on the wire goes on
in the client and, if accepted, is tracked) or after (the id, still tracked: await it again).
Cancelling the caller cancels only the wait: the client keeps tracking what it accepted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from ._checks import check_seconds
from ._exceptions import GenerationTimeout
from ._generation import Generation
from ._models import Video

__all__ = ["generate_within"]


async def generate_within(
    timeout: float | None, submit: Callable[[], Awaitable[Generation]]
) -> Video:
    """``submit()`` then its video, or ``GenerationTimeout`` after ``timeout`` seconds."""
    if timeout is not None:
        check_seconds("generate(timeout=...)", timeout, allow_inf=True)
    handle: Generation | None = None
    with anyio.move_on_after(timeout):
        handle = await submit()
        return await handle
    if handle is None:
        raise GenerationTimeout(
            None,
            f"no answer to the submission within {timeout:g} s; if the server accepts it, "
            "the generation is tracked (client.pending)",
        )
    if handle.done():
        return handle.result()
    raise GenerationTimeout(
        handle.id, f"not finished within {timeout:g} s; still tracked, await it again"
    )
