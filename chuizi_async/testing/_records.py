"""What the simulator records: counters, the request log and its generations."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any, Literal

import attrs

__all__ = ["Counters", "GenerationStatus", "RecordedRequest", "SimGeneration"]

GenerationStatus = Literal["processing", "completed", "failed"]


@attrs.define(kw_only=True)
class Counters:
    """Running totals of what the simulator saw and did."""

    requests: int = 0
    submissions: int = 0
    status_checks: int = 0
    status_checks_by_id: Counter[str] = attrs.field(factory=Counter)
    generations_created: int = 0
    idempotent_replays: int = 0
    rate_limited: int = 0
    faults: Counter[str] = attrs.field(factory=Counter)
    media_requests: int = 0
    media_requests_with_auth: int = 0
    payment_required: int = 0


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request as the simulator received it (``time`` is ``time.monotonic()``)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    time: float

    def header(self, name: str) -> str | None:
        """A header's value, matching the name case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    @property
    def has_credentials(self) -> bool:
        """Whether the request carried an ``Authorization`` or ``x-api-key`` header."""
        return self.header("Authorization") is not None or self.header("x-api-key") is not None


@attrs.define(eq=False, kw_only=True)
class SimGeneration:
    """One generation held by the simulator.

    ``status`` uses the guide's values; ``ready_at`` is the ``time.monotonic()`` value at which
    the video became (or becomes) ready, ``None`` while it waits for ``complete()``/``fail()``.
    ``processing_time`` is in server seconds (before ``speed`` compresses it).
    """

    id: str
    model: str
    prompt: str
    duration: int
    created: int
    submitted_at: float
    processing_time: float
    ready_at: float | None
    cost: Decimal
    idempotency_key: str | None
    task_id: str
    api_key: str
    planned_error: dict[str, str] | None = None
    status: GenerationStatus = "processing"
    error: dict[str, str] | None = None
    latency_ms: int | None = None
    refunded: bool = False

    @property
    def charged(self) -> Decimal:
        """What the generation costs the key now (zero once refunded)."""
        return Decimal(0) if self.refunded else self.cost
