"""The heap of due times: the earliest live place first, one entry a place, stale ones dropped."""

from __future__ import annotations

import math

import chuizi_async as ca
from chuizi_async._due import IN_FLIGHT, DueTimes, Tracked
from chuizi_async._generation import Generation, resolve


def _entry(gen_id: str) -> Tracked:
    return Tracked(Generation(gen_id, "google/veo-3.1-fast"), submitted_at=0.0)


def test_the_earliest_due_entry_is_taken_first_and_only_once_due() -> None:
    due = DueTimes()
    late, early = _entry("gen-late"), _entry("gen-early")
    due.push(late, 20.0)
    due.push(early, 10.0)
    assert due.earliest() == 10.0
    assert due.take(5.0) is None  # nothing due yet
    assert due.take(15.0) is early and early.due == IN_FLIGHT
    assert due.take(15.0) is None
    assert due.take(25.0) is late
    assert due.earliest() is None


def test_a_push_says_whether_it_became_the_earliest() -> None:
    due = DueTimes()
    assert due.push(_entry("gen-1"), 10.0) is True  # the first: a sleeper must wake
    assert due.push(_entry("gen-2"), 20.0) is False
    assert due.push(_entry("gen-3"), 5.0) is True


def test_an_entry_pushed_again_is_taken_at_its_new_time_only() -> None:
    due = DueTimes()
    entry = _entry("gen-1")
    due.push(entry, 10.0)
    due.push(entry, 30.0)  # rescheduled: its place at 10 is left behind
    assert due.take(15.0) is None
    assert due.take(35.0) is entry
    assert due.take(35.0) is None  # not twice


def test_a_resolved_handles_place_is_dropped() -> None:
    due = DueTimes()
    done, pending = _entry("gen-done"), _entry("gen-pending")
    due.push(done, 10.0)
    due.push(pending, 20.0)
    resolve(done.handle, ca.GenerationFailed("gen-done", "policy"))
    assert due.take(25.0) is pending
    assert due.earliest() is None


def test_entries_due_at_one_instant_each_get_a_place_of_their_own() -> None:
    due = DueTimes()
    entries = [_entry(f"gen-{i}") for i in range(3)]
    for entry in entries:
        due.push(entry, 10.0)
    assert len({entry.due for entry in entries}) == 3  # the next floats up
    assert all(entry.due - 10.0 < 1e-9 for entry in entries)
    taken = [due.take(11.0) for _ in range(3)]
    assert sorted(id(e) for e in taken) == sorted(id(e) for e in entries)


def test_due_times_past_every_float_are_capped_and_still_distinct() -> None:
    due = DueTimes()
    far = [_entry("gen-a"), _entry("gen-b")]
    for entry in far:
        due.push(entry, math.inf)
    assert all(math.isfinite(entry.due) for entry in far)
    assert far[0].due != far[1].due
    assert due.take(1e6) is None


def test_clear_forgets_every_place() -> None:
    due = DueTimes()
    due.push(_entry("gen-1"), 1.0)
    due.clear()
    assert due.earliest() is None
    assert due.take(math.inf) is None
