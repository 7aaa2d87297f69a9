"""Where a submission is sent from: the cancel scope that shields it once on the wire.

``submit()`` sends each submission in a scope of its own (``CallWire``), entered around
``Submitter.sent_by``; a batch worker sends all of its own in one scope entered around the
worker (``WorkerWire``): ``anyio.CancelScope()`` costs a submission ~9 us. ``aclose()`` gives
up on either with ``give_up()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import anyio

if TYPE_CHECKING:
    from ._generation import Generation
    from ._submitter import Checked

__all__ = ["CallWire", "OnTheWire", "SentBy", "Wire", "WorkerWire"]


class SentBy(Protocol):
    """``Submitter.sent_by``: send through a wire, register the answer."""

    def __call__(
        self,
        wire: Wire,
        checked: Checked,
        idempotency_key: str,
        on_accepted: Callable[[Generation], object] | None,
        index: int | None,
        before_wire: Callable[[], Awaitable[None]] | None = None,
    ) -> Awaitable[Generation]: ...


class Wire:
    """Where a submission is sent from: ``scope``, entered around the send by its owner and
    shielded once the request is on the wire; ``give_up()`` for ``aclose()``, which cancels
    the scope."""

    __slots__ = ("gave_up", "scope")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.gave_up = False

    def give_up(self) -> None:
        self.gave_up = True
        self.scope.cancel()

    def off(self) -> None:
        """The send ended."""


class CallWire(Wire):
    """Where ``submit()`` sends one submission: a cancel scope of its own, entered around
    the send (and left with it)."""

    __slots__ = ()


class WorkerWire(Wire):
    """Where a batch worker sends: one cancel scope around the worker, not one per
    submission (``anyio.CancelScope()`` costs a submission ~9 us); shielded while one of
    its submissions is on the wire. Giving up cancels the worker's scope: the submission
    raises its outcome, the worker returns (``gave_up``) and starts again in a new scope."""

    __slots__ = ("_sent_by",)

    def __init__(self, sent_by: SentBy) -> None:
        super().__init__()
        self._sent_by = sent_by

    def off(self) -> None:
        self.scope.shield = False  # between submissions the worker may be cancelled

    def __call__(
        self,
        checked: Checked,
        idempotency_key: str,
        *,
        on_accepted: Callable[[Generation], object] | None = None,
        index: int | None = None,
        before_wire: Callable[[], Awaitable[None]] | None = None,
    ) -> Awaitable[Generation]:
        # returned to be awaited: one frame less on a batch's hot path
        return self._sent_by(self, checked, idempotency_key, on_accepted, index, before_wire)


class OnTheWire:
    """A submission's ``on_wire``: from here its answer must be read (it may carry an id), so
    its scope is shielded; ``before_wire`` runs once, before the first attempt goes out. A
    429 made nothing: until the next attempt the submission may be cancelled again (a
    batch waiting out a spent window stops when its caller does, not minutes later)."""

    __slots__ = ("_before", "_scope")

    def __init__(
        self, scope: anyio.CancelScope, before: Callable[[], Awaitable[None]] | None
    ) -> None:
        self._scope = scope
        self._before = before

    def __call__(self) -> Awaitable[None] | None:
        self._scope.shield = True
        before, self._before = self._before, None
        return before() if before is not None else None

    def refused(self) -> None:
        self._scope.shield = False
