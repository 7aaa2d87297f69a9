"""When each pending generation is next checked: the poller's entries and their heap.

A ``Tracked`` entry is what the poller knows of one pending handle; ``DueTimes`` orders the
entries by their next check. The heap holds floats, each the key of its entry in a dict: a
float is no object the garbage collector tracks, where a ``(due, seq, entry)`` tuple per
place was one more per pending generation. An entry pushed again leaves its old place
behind, dropped when reached.
"""

from __future__ import annotations

import heapq
import math

import attrs

from ._generation import Generation

__all__ = ["IN_FLIGHT", "DueTimes", "Tracked"]

IN_FLIGHT = -math.inf
"""The due time of an entry whose check is under way (it has no place in the heap)."""
_NEVER = 1e300  # the latest due time (seconds of the monotonic clock): later ones wait here


@attrs.define(eq=False, weakref_slot=False)
class Tracked:
    """The poller's entry for one pending handle: its place in the schedule and its history."""

    handle: Generation
    submitted_at: float
    due: float = 0.0
    checks: int = 0
    failures: int = 0  # transient failures in a row
    scout: bool = False  # checked early to learn the model's latency (see Schedule)
    wants_cost: bool = False  # look up a cost the status answer lacks (see Poller)


class DueTimes:
    """A heap of due times, one place an entry; the earliest live one taken when due."""

    __slots__ = ("_at", "_heap")

    def __init__(self) -> None:
        self._heap: list[float] = []
        self._at: dict[float, Tracked] = {}

    def earliest(self) -> float | None:
        """The earliest due time in the heap (perhaps of a place left behind), if any."""
        heap = self._heap
        return heap[0] if heap else None

    def push(self, entry: Tracked, due: float) -> bool:
        """Give ``entry`` the place ``due`` (its old one is left behind); whether it is now
        the earliest, so that a sleeper should wake."""
        heap, at = self._heap, self._at
        due = min(due, _NEVER)  # finite: a place taken always has a next float up
        while due in at:  # one entry a place: the next float up (a shift of ~1e-16 s)
            due = math.nextafter(due, math.inf)
        earlier = not heap or due < heap[0]
        entry.due = due
        at[due] = entry
        heapq.heappush(heap, due)
        return earlier

    def take(self, current: float) -> Tracked | None:
        """The earliest pending entry if it is due at ``current``, taken off the heap (its
        due time becomes ``IN_FLIGHT``)."""
        heap, at = self._heap, self._at
        while heap:
            due = heap[0]
            entry = at[due]
            # a place is live if it is the entry's last and the handle still pending; the
            # others (resolved, or rescheduled since) are dropped on the way
            live = due == entry.due and not entry.handle.done()
            if live and due > current:
                return None
            heapq.heappop(heap)
            del at[due]
            if live:
                entry.due = IN_FLIGHT
                return entry
        return None

    def clear(self) -> None:
        self._heap.clear()
        self._at.clear()
