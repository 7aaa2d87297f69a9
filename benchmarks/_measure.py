"""What both sides of a comparison record, and the figures computed from it.

Times are ``time.monotonic()`` seconds (see ``_sim_process`` for why the two processes can
compare them).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from chuizi_async import AiohttpTransport, Request, Response

__all__ = [
    "Exchange",
    "Recorder",
    "RecordingTransport",
    "Truth",
    "detection_lags",
    "median",
    "percentile",
    "status_id",
]


@attrs.frozen
class Exchange:
    """One HTTP request and its answer (``status`` 0: no answer, the request raised)."""

    method: str
    generation_id: str | None
    sent: float
    received: float
    status: int


@attrs.define
class Recorder:
    """Every exchange of one side, and how many requests were in flight at most."""

    exchanges: list[Exchange] = attrs.field(factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    @contextmanager
    def request(self) -> Iterator[None]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1

    def record(self, method: str, generation_id: str | None, sent: float, status: int) -> None:
        self.exchanges.append(Exchange(method, generation_id, sent, time.monotonic(), status))

    @property
    def first_sent(self) -> float:
        return min((e.sent for e in self.exchanges), default=0.0)

    def count_429(self, *, after: float = -1.0) -> int:
        """429 answers received after ``after`` (a ``time.monotonic()`` value)."""
        return sum(1 for e in self.exchanges if e.status == 429 and e.received > after)

    def share_429(self, *, sent_after: float = -1.0) -> float:
        """The share of requests sent after ``sent_after`` that were answered 429."""
        sent = [e for e in self.exchanges if e.sent > sent_after]
        return sum(1 for e in sent if e.status == 429) / len(sent) if sent else float("nan")

    def last_status_answer(self) -> dict[str, float]:
        """Per generation id, when its last status answer arrived (= when it was resolved)."""
        last: dict[str, float] = {}
        for e in self.exchanges:
            if e.method == "GET" and e.generation_id is not None and e.status == 200:
                last[e.generation_id] = max(last.get(e.generation_id, 0.0), e.received)
        return last


def status_id(url: str) -> str | None:
    """The generation id of a status URL (either route), else None."""
    parts = urlsplit(url)
    if parts.path.endswith("/generation"):
        ids = parse_qs(parts.query).get("id")
        return ids[0] if ids else None
    _, sep, tail = parts.path.rpartition("/videos/")
    return tail if sep and tail and tail != "generations" else None


class RecordingTransport(AiohttpTransport):
    """The client's own transport, recording each exchange of ``send`` (a few µs each).

    The client resolves a handle synchronously after parsing the answer of its final status
    check, so the arrival time of a generation's last status answer is when it was detected.
    """

    def __init__(self, recorder: Recorder, *, max_connections: int = 64) -> None:
        super().__init__(max_connections=max_connections)
        self.recorder = recorder

    async def send(self, request: Request) -> Response:
        sent = time.monotonic()
        status = 0
        try:
            with self.recorder.request():
                response = await super().send(request)
            status = response.status
            return response
        finally:
            gen_id = status_id(request.url) if request.method == "GET" else None
            self.recorder.record(request.method, gen_id, sent, status)


@attrs.frozen
class Truth:
    """The simulator's own record of one generation."""

    id: str
    prompt: str
    status: str
    ready_at: float | None

    @classmethod
    def by_prompt(cls, dump: Mapping[str, Any]) -> dict[str, list[Truth]]:
        found: dict[str, list[Truth]] = {}
        for gen_id, gen in dump["generations"].items():
            truth = cls(gen_id, gen["prompt"], gen["status"], gen["ready_at"])
            found.setdefault(truth.prompt, []).append(truth)
        return found


def detection_lags(detected: Mapping[str, float], dump: Mapping[str, Any]) -> list[float]:
    """Seconds between the server having each outcome ready and the client seeing it."""
    lags = []
    for gen_id, at in detected.items():
        ready_at = dump["generations"].get(gen_id, {}).get("ready_at")
        if ready_at is not None:
            lags.append(at - ready_at)
    return lags


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
