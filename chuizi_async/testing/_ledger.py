"""The simulator's generations and balance: creation, lazy completion, refunds."""

from __future__ import annotations

import heapq
import random
import string
import time
from decimal import Decimal

import attrs

from ._catalogue import Submission
from ._errors import ApiError
from ._records import SimGeneration
from ._render import Dialect, format_money

__all__ = ["Ledger"]

_REFERENCE_ID_CHARS = string.ascii_lowercase + string.digits


@attrs.define(eq=False, kw_only=True)
class Ledger:
    """Every generation by id, and the key's balance (``None``: unlimited).

    Statuses are computed lazily: :meth:`settle` finishes the generations whose ``ready_at``
    has passed, so no task runs per generation.
    """

    rng: random.Random
    balance: Decimal | None = None
    generations: dict[str, SimGeneration] = attrs.field(factory=dict)
    _pending: list[tuple[float, str]] = attrs.field(factory=list)

    def create(
        self,
        submission: Submission,
        *,
        key: str,
        idempotency_key: str | None,
        dialect: Dialect,
        speed: float,
        auto_complete: bool,
        planned_error: dict[str, str] | None,
    ) -> SimGeneration:
        """Charge the estimated cost and record a new generation; 402 if the balance is short."""
        model = submission.model
        cost = model.cost(submission.duration)
        if self.balance is not None:
            if self.balance < cost:
                raise ApiError(
                    402,
                    f"Insufficient balance: {format_money(self.balance)} is less than the "
                    f"estimated cost {format_money(cost)}",
                    "insufficient_quota",
                    code="insufficient_quota",
                )
            self.balance -= cost
        now = time.monotonic()
        processing_time = self.rng.uniform(*model.completion_time)
        ready_at = now + processing_time / speed if auto_complete else None
        generation = SimGeneration(
            id=self._new_id(dialect),
            model=model.id,
            prompt=submission.prompt,
            duration=submission.duration,
            created=int(time.time()),
            submitted_at=now,
            processing_time=processing_time,
            ready_at=ready_at,
            cost=cost,
            idempotency_key=idempotency_key,
            task_id=f"task-{self.rng.getrandbits(96):024x}",
            api_key=key,
            planned_error=planned_error,
        )
        self.generations[generation.id] = generation
        if ready_at is not None:
            heapq.heappush(self._pending, (ready_at, generation.id))
        return generation

    def _new_id(self, dialect: Dialect) -> str:
        while True:
            if dialect == "guide":
                suffix = f"{self.rng.getrandbits(64):016x}"
            else:
                suffix = "".join(self.rng.choices(_REFERENCE_ID_CHARS, k=24))
            if f"gen-{suffix}" not in self.generations:
                return f"gen-{suffix}"

    def spent(self) -> Decimal:
        """What the key's generations cost, refunds deducted: the day's spend."""
        return sum((generation.charged for generation in self.generations.values()), Decimal(0))

    def lookup(self, generation_id: str) -> SimGeneration:
        """The generation with this id, or a 404 :class:`ApiError`."""
        generation = self.generations.get(generation_id)
        if generation is None:
            raise ApiError(404, "Generation not found", "not_found")
        return generation

    def settle(self, now: float) -> None:
        """Finish every scheduled generation whose ``ready_at`` has passed."""
        while self._pending and self._pending[0][0] <= now:
            _, generation_id = heapq.heappop(self._pending)
            generation = self.generations[generation_id]
            if generation.status == "processing":
                self._finish(generation, generation.planned_error, generation.processing_time)

    def force(self, generation_id: str, error: dict[str, str] | None, speed: float) -> None:
        """Finish a generation now, successfully or with ``error`` (no-op if finished)."""
        now = time.monotonic()
        self.settle(now)
        generation = self.generations[generation_id]
        if generation.status != "processing":
            return
        generation.ready_at = now
        self._finish(generation, error, (now - generation.submitted_at) * speed)

    def _finish(
        self, generation: SimGeneration, error: dict[str, str] | None, processing_time: float
    ) -> None:
        generation.latency_ms = int(processing_time * 1000)
        if error is None:
            generation.status = "completed"
            return
        generation.status = "failed"
        generation.error = dict(error)
        generation.refunded = True
        if self.balance is not None:
            self.balance += generation.cost
