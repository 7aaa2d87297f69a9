"""The journal: resume a batch after a crash without losing a clip or paying twice."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

import chuizi_async as ca
from chuizi_async._journal import request_fingerprint
from chuizi_async.testing import FakeChuizi, Faults

from .conftest import ClientFactory, wait_until

VEO = "google/veo-3.1-fast"
ROOT = Path(__file__).resolve().parent.parent


def _requests(n: int) -> list[dict[str, Any]]:
    return [{"model": VEO, "prompt": "forbidden" if i % 6 == 5 else f"clip {i}"} for i in range(n)]


async def test_a_finished_batch_comes_back_from_the_journal_with_no_request(
    client: ca.Client, server: FakeChuizi, tmp_path: Path
) -> None:
    journal = tmp_path / "batch.journal"
    first = await client.generate_many(_requests(12), journal=journal, return_exceptions=True)
    requests_before = server.counters.requests
    second = await client.generate_many(_requests(12), journal=journal, return_exceptions=True)
    assert server.counters.requests == requests_before
    assert [type(r) for r in first] == [type(r) for r in second]
    for a, b in zip(first, second, strict=True):
        if isinstance(a, ca.Video):
            assert isinstance(b, ca.Video)
            assert (a.id, a.url, a.cost) == (b.id, b.url, b.cost)
        else:
            assert isinstance(a, ca.GenerationFailed) and isinstance(b, ca.GenerationFailed)
            assert (a.generation_id, a.message) == (b.generation_id, b.message)


async def test_identical_requests_in_one_batch_are_two_clips(
    client: ca.Client, server: FakeChuizi, tmp_path: Path
) -> None:
    twins = [{"model": VEO, "prompt": "same"}] * 2
    videos = await client.generate_many(twins, journal=tmp_path / "j")
    assert len({v.id for v in videos if isinstance(v, ca.Video)}) == 2
    await client.generate_many(twins, journal=tmp_path / "j")
    assert server.counters.generations_created == 2


async def test_an_accepted_generation_is_tracked_by_id_not_submitted_again(
    make_client: ClientFactory, server: FakeChuizi, tmp_path: Path
) -> None:
    server.auto_complete = False
    journal = ca.Journal(tmp_path / "j")
    async with make_client() as first:
        async with first.as_completed(_requests(4), journal=journal) as results:
            await wait_until(lambda: len(results.accepted) == 4)
        entries = journal.entries()
        assert {e.state for e in entries} == {"accepted"}
    for gen_id in list(server.generations):
        server.complete(gen_id)
    async with make_client() as second:
        results2 = await second.generate_many(_requests(4), journal=journal, return_exceptions=True)
    journal.close()
    assert server.counters.submissions == 4
    assert {r.id for r in results2 if isinstance(r, ca.Video)} == set(server.generations)


async def test_a_video_the_client_could_not_read_is_read_again_by_the_next_run(
    client: ca.Client, server: FakeChuizi, tmp_path: Path
) -> None:
    journal = tmp_path / "batch.journal"
    server.video_url_at = "result.media.src"  # a gateway that puts it where no document does
    (first,) = await client.generate_many(_requests(1), journal=journal, return_exceptions=True)
    assert isinstance(first, ca.UnreadableVideo)
    server.video_url_at = "output.video_url"  # the gateway fixed (or the library taught)
    (second,) = await client.generate_many(_requests(1), journal=journal)
    assert isinstance(second, ca.Video)
    assert second.id == first.generation_id  # the paid video, not a new one
    assert server.counters.generations_created == 1


async def test_accepted_generations_are_followed_up_whatever_max_cost_says(
    make_client: ClientFactory, server: FakeChuizi, tmp_path: Path
) -> None:
    server.auto_complete = False
    journal = ca.Journal(tmp_path / "j")
    async with (
        make_client() as first,
        first.as_completed(_requests(3), journal=journal) as results,
    ):
        await wait_until(lambda: len(results.accepted) == 3)
    for gen_id in list(server.generations):
        server.complete(gen_id)
    async with make_client() as second:
        again = await second.generate_many(
            _requests(4), journal=journal, max_cost=Decimal(0), return_exceptions=True
        )
    journal.close()
    assert [type(r).__name__ for r in again] == ["Video"] * 3 + ["CostLimitExceeded"]
    assert server.counters.submissions == 3


async def test_an_interrupted_submission_is_resent_with_the_same_idempotency_key(
    make_client: ClientFactory, server: FakeChuizi, tmp_path: Path
) -> None:
    path = tmp_path / "j"
    with ca.Journal(path) as journal:
        await journal.record_sending("only", "chuizi-fixed-key", VEO)
    server.faults = Faults(drop_after_create=1.0)
    async with make_client(max_retries=0) as client:
        (result,) = await client.generate_many(
            [{"model": VEO, "prompt": "a cat", "key": "only"}], journal=path, return_exceptions=True
        )
        assert isinstance(result, ca.APIConnectionError)  # created, but the answer was lost
        server.faults = None
        (video,) = await client.generate_many(
            [{"model": VEO, "prompt": "a cat", "key": "only"}], journal=path
        )
    assert isinstance(video, ca.Video)
    posts = [r for r in server.requests_log if r.method == "POST"]
    assert {r.header("Idempotency-Key") for r in posts} == {"chuizi-fixed-key"}
    assert server.counters.generations_created == 1
    assert server.counters.idempotent_replays == 1


async def test_the_journal_keeps_outcomes_and_no_key(
    client: ca.Client, server: FakeChuizi, tmp_path: Path
) -> None:
    path = tmp_path / "j"
    await client.generate_many(_requests(6), journal=path, return_exceptions=True)
    with ca.Journal(path) as journal:
        states = sorted(e.state for e in journal.entries())
    assert states == ["completed"] * 5 + ["failed"]
    assert server.api_key.encode() not in path.read_bytes()


async def test_max_cost_stops_submissions_with_the_reason(
    client: ca.Client, server: FakeChuizi
) -> None:
    results = await client.generate_many(
        [{"model": VEO, "prompt": f"p{i}", "duration": 5} for i in range(10)],
        max_cost=Decimal("0.50"),
        return_exceptions=True,
    )
    videos = [r for r in results if isinstance(r, ca.Video)]
    held = [r for r in results if isinstance(r, ca.CostLimitExceeded)]
    assert len(videos) == 3 and len(held) == 7  # 3 x 0.15 = 0.45; a fourth would pass 0.50
    assert sum((v.cost or Decimal(0)) for v in videos) <= Decimal("0.50")
    assert all("max_cost" in str(e) and e.reason == "max_cost" for e in held)
    assert server.counters.submissions == 3


async def test_stop_submitting_reports_the_rest_as_not_submitted(
    client: ca.Client, server: FakeChuizi
) -> None:
    outcomes: list[str] = []
    async with client.as_completed(_requests(30), concurrency=2) as results:
        async for handle in results:
            if not outcomes:
                results.stop_submitting()
            error = handle.exception()
            outcomes.append("ok" if error is None else type(error).__name__)
    assert len(outcomes) == 30
    assert outcomes.count("NotSubmitted") >= 25
    assert server.counters.submissions == 30 - outcomes.count("NotSubmitted")


# -- uncertain submissions (retry_submissions="safe") ------------------------------------------


def _posts(server: FakeChuizi) -> list[str | None]:
    return [r.header("Idempotency-Key") for r in server.requests_log if r.method == "POST"]


async def test_an_uncertain_submission_is_journaled_and_not_sent_again_on_a_rerun(
    make_client: ClientFactory, server: FakeChuizi, tmp_path: Path
) -> None:
    path = tmp_path / "j"
    server.honour_idempotency = False
    server.faults = Faults(drop_after_create_at={2})
    requests = [{"model": VEO, "prompt": f"clip {i}"} for i in range(3)]
    async with make_client(retry_submissions="safe") as client:
        first = await client.generate_many(
            requests, journal=path, concurrency=1, return_exceptions=True
        )
        lost = first[1]
        assert isinstance(lost, ca.SubmissionUncertain)
        with ca.Journal(path) as journal:
            states = [e.state for e in journal.entries()]
            (entry,) = [e for e in journal.entries() if e.state == "uncertain"]
        assert sorted(states) == ["completed", "completed", "uncertain"]
        assert entry.idempotency_key == lost.idempotency_key == _posts(server)[1]
        posts_before = server.counters.submissions

        again = await client.generate_many(requests, journal=path, return_exceptions=True)
        assert server.counters.submissions == posts_before  # nothing sent
        assert isinstance(again[1], ca.SubmissionUncertain)
        assert again[1].idempotency_key == lost.idempotency_key
        assert again[1].request is not None and again[1].request.prompt == "clip 1"
        assert "resend_uncertain=True" in str(again[1])
        assert [type(r) for r in again[::2]] == [ca.Video, ca.Video]

        async with client.as_completed(requests, journal=path) as results:
            outcomes = [type(h.exception()) async for h in results]
        assert server.counters.submissions == posts_before
        assert sorted(t.__name__ for t in outcomes) == [
            "NoneType",
            "NoneType",
            "SubmissionUncertain",
        ]
    assert server.counters.generations_created == 3


async def test_resend_uncertain_sends_it_again_with_the_same_key(
    make_client: ClientFactory, server: FakeChuizi, tmp_path: Path
) -> None:
    path = tmp_path / "j"
    server.faults = Faults(drop_after_create_at={1})
    request = [{"model": VEO, "prompt": "lost answer"}]
    async with make_client(retry_submissions="safe") as client:
        (lost,) = await client.generate_many(request, journal=path, return_exceptions=True)
        assert isinstance(lost, ca.SubmissionUncertain)
        with ca.Journal(path, resend_uncertain=True) as journal:
            (video,) = await client.generate_many(request, journal=journal)
            (entry,) = journal.entries()
    assert isinstance(video, ca.Video)
    assert entry.state == "completed" and entry.generation_id == video.id
    assert _posts(server) == [lost.idempotency_key] * 2
    # this server honours the key: the second POST replays the first answer
    assert server.counters.generations_created == 1
    assert server.counters.idempotent_replays == 1


async def test_an_uncertain_request_stays_uncertain_when_a_rerun_stops_submitting(
    make_client: ClientFactory, server: FakeChuizi, tmp_path: Path
) -> None:
    path = tmp_path / "j"
    server.faults = Faults(drop_after_create_at={1})
    lost = {"model": VEO, "prompt": "lost answer", "key": "lost"}
    async with make_client(retry_submissions="safe") as client:
        (first,) = await client.generate_many([lost], journal=path, return_exceptions=True)
        assert isinstance(first, ca.SubmissionUncertain)
        server.faults = None
        server.balance = Decimal(0)  # the rerun's first submission answers 402
        fresh = {"model": VEO, "prompt": "a cat", "key": "fresh"}
        again = await client.generate_many(
            [fresh, lost], journal=path, concurrency=1, return_exceptions=True
        )
    assert isinstance(again[0], ca.InsufficientBalanceError)
    # not "not submitted": it went out once and may have created a generation
    assert isinstance(again[1], ca.SubmissionUncertain)
    assert again[1].idempotency_key == first.idempotency_key
    assert server.counters.submissions == 2


async def _died_on_the_wire(path: Path, key: str, idempotency_key: str) -> None:
    """The journal of a run killed while this request was on the wire."""
    with ca.Journal(path) as journal:
        await journal.record_sending(key, idempotency_key, VEO)
        await journal.record_sent(key)


async def test_safe_mode_does_not_resend_what_a_dead_run_left_on_the_wire(
    make_client: ClientFactory, server: FakeChuizi, tmp_path: Path
) -> None:
    path = tmp_path / "j"
    await _died_on_the_wire(path, "only", "chuizi-on-the-wire")
    request = [{"model": VEO, "prompt": "a cat", "key": "only"}]
    async with make_client(retry_submissions="safe") as client:
        (result,) = await client.generate_many(request, journal=path, return_exceptions=True)
        assert isinstance(result, ca.SubmissionUncertain)
        assert result.idempotency_key == "chuizi-on-the-wire"
        assert "earlier run stopped" in str(result)
        assert server.counters.submissions == 0
        with ca.Journal(path, resend_uncertain=True) as journal:
            assert journal.entries()[0].state == "uncertain"
            (video,) = await client.generate_many(request, journal=journal)
    assert isinstance(video, ca.Video)
    assert _posts(server) == ["chuizi-on-the-wire"]


async def test_idempotent_mode_resends_what_a_dead_run_left_on_the_wire_with_its_key(
    make_client: ClientFactory, server: FakeChuizi, tmp_path: Path
) -> None:
    path = tmp_path / "j"
    await _died_on_the_wire(path, "only", "chuizi-on-the-wire")
    async with make_client() as client:
        (video,) = await client.generate_many(
            [{"model": VEO, "prompt": "a cat", "key": "only"}], journal=path
        )
    assert isinstance(video, ca.Video)
    assert _posts(server) == ["chuizi-on-the-wire"]


async def test_safe_mode_journals_a_refused_submission_as_not_sent_and_a_rerun_sends_it(
    make_client: ClientFactory, server: FakeChuizi, tmp_path: Path
) -> None:
    path = tmp_path / "j"
    server.balance = Decimal(0)
    request = [{"model": VEO, "prompt": "a cat", "key": "only"}]
    async with make_client(retry_submissions="safe") as client:
        (refused,) = await client.generate_many(request, journal=path, return_exceptions=True)
        assert isinstance(refused, ca.InsufficientBalanceError)
        with ca.Journal(path) as journal:
            assert [e.state for e in journal.entries()] == ["sending"]  # answered: not created
        server.balance = Decimal(10)  # a top-up
        (video,) = await client.generate_many(request, journal=path)
    assert isinstance(video, ca.Video)
    assert server.counters.generations_created == 1


# -- kill -9 -----------------------------------------------------------------------------------


def _journal_states(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT state FROM requests")]


@pytest.mark.parametrize("kill_after", [1, 7, 15])
async def test_kill_9_mid_batch_loses_nothing_and_pays_nothing_twice(
    kill_after: int, tmp_path: Path
) -> None:
    n = 20
    journal = tmp_path / "batch.journal"
    async with FakeChuizi(speed=400, seed=kill_after) as server:
        env = {
            **os.environ,
            "CHUIZI_API_KEY": server.api_key,
            "CHUIZI_BASE_URL": server.base_url,
            "PYTHONPATH": str(ROOT),
        }
        command = [sys.executable, "-m", "tests.journal_worker", str(journal), str(n)]
        async with await anyio.open_process(command, env=env, cwd=ROOT) as process:
            await wait_until(lambda: server.counters.submissions >= kill_after, timeout=20)
            process.send_signal(signal.SIGKILL)
            await process.wait()
        assert process.returncode == -signal.SIGKILL
        created_at_kill = server.counters.generations_created

        result = await anyio.run_process(command, env=env, cwd=ROOT, check=False)
        assert result.returncode == 0, result.stderr.decode()
        assert server.counters.generations_created == n + 1  # the twin is a clip of its own
        assert created_at_kill <= n + 1
        states = _journal_states(journal)
        assert len(states) == n + 1 and set(states) == {"completed"}
        ids = {g.id for g in server.generations.values()}
        with contextlib.closing(sqlite3.connect(journal)) as conn:
            journaled = {row[0] for row in conn.execute("SELECT generation_id FROM requests")}
        assert journaled == ids  # every clip the server made is in the journal, once
        for written in tmp_path.iterdir():  # the journal and its WAL files
            assert server.api_key.encode() not in written.read_bytes()


async def test_kill_9_in_safe_mode_never_pays_twice_even_if_the_server_ignores_the_key(
    tmp_path: Path,
) -> None:
    n = 20
    journal = tmp_path / "batch.journal"
    async with FakeChuizi(speed=400, seed=3, honour_idempotency=False) as server:
        env = {
            **os.environ,
            "CHUIZI_API_KEY": server.api_key,
            "CHUIZI_BASE_URL": server.base_url,
            "PYTHONPATH": str(ROOT),
        }
        command = [sys.executable, "-m", "tests.journal_worker", str(journal), str(n), "safe"]
        async with await anyio.open_process(command, env=env, cwd=ROOT) as process:
            await wait_until(lambda: server.counters.submissions >= 7, timeout=20)
            process.send_signal(signal.SIGKILL)
            await process.wait()

        result = await anyio.run_process(command, env=env, cwd=ROOT, check=False)
        assert result.returncode == 0, result.stderr.decode()
        keys = [g.idempotency_key for g in server.generations.values()]
        assert len(keys) == len(set(keys))  # no request created two generations
        states = _journal_states(journal)
        assert len(states) == n + 1 and set(states) <= {"completed", "uncertain"}
        # an uncertain one was on the wire at the kill: created or not, never twice
        assert server.counters.generations_created <= n + 1
        assert states.count("completed") + states.count("uncertain") == n + 1


def test_a_request_keeps_the_fingerprint_earlier_versions_gave_it() -> None:
    # a journal written before watermark was a field must still recognise its requests
    plain = ca.GenerationRequest("google/veo-3.1-fast", "a cat", duration=5, aspect_ratio="16:9")
    assert request_fingerprint(plain) == "7db015a20eb956eb25e9"
    old_style = ca.GenerationRequest(
        "google/veo-3.1-fast", "a cat", extra_body={"watermark": False, "seed": 1}
    )
    new_style = ca.GenerationRequest(
        "google/veo-3.1-fast", "a cat", watermark=False, extra_body={"seed": 1}
    )
    assert request_fingerprint(old_style) == request_fingerprint(new_style)
    assert request_fingerprint(new_style) == "e59f6692726f875554ed"
    assert request_fingerprint(attrs.evolve(new_style, watermark=True)) != "e59f6692726f875554ed"


# -- refusals for good ---------------------------------------------------------------------------


async def test_a_refused_submission_comes_back_as_the_same_error(tmp_path: Path) -> None:
    from chuizi_async._exceptions import error_for_status

    path = tmp_path / "old.journal"
    with sqlite3.connect(path) as conn:  # a journal written before the refusal column
        conn.execute(
            "CREATE TABLE requests (key TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL, "
            "state TEXT NOT NULL, model TEXT, generation_id TEXT, video_url TEXT, cost TEXT, "
            "duration_seconds REAL, error_message TEXT, error_type TEXT, "
            "updated_at REAL NOT NULL)"
        )
    conn.close()
    refused = error_for_status(
        404, "The model 'x' was not found", "not_found", code="model_not_found", request_id="req_1"
    )
    with ca.Journal(path) as journal:
        await journal.record_sending("k", "chuizi-1", "x")
        await journal.record_refused("k", refused)
        entry = journal.get("k")
    assert entry is not None and entry.final and journal.settled(entry)
    again = entry.outcome()
    assert type(again) is ca.NotFoundError
    assert (again.status_code, again.message, again.code, again.request_id) == (
        404,
        "The model 'x' was not found",
        "model_not_found",
        "req_1",
    )
    assert ca.error_type(again) == "not_found"


async def test_a_batch_cancelled_while_429s_are_waited_out_leaves_a_request_to_send(
    make_client: ClientFactory, server: FakeChuizi, tmp_path: Path
) -> None:
    # "safe": a request is journaled "sent" before it goes out, and an earlier run's "sent" is
    # uncertain. A 429 made nothing, so a batch stopped while waiting one out must not leave it so
    path = tmp_path / "j"
    server.faults = Faults(rate_limited=1.0, retry_after=0.02)
    requests = [{"model": VEO, "prompt": "a heron at dawn"}]
    async with make_client(retry_submissions="safe", time_scale=10.0) as client:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: client.generate_many(requests, journal=path))
                await wait_until(lambda: server.counters.rate_limited >= 3)
                scope.cancel()
        with ca.Journal(path) as journal:
            assert [e.state for e in journal.entries()] == ["sending"]
        server.faults = Faults()
        (video,) = await client.generate_many(requests, journal=path)  # sent, not uncertain
    assert isinstance(video, ca.Video)
    assert server.counters.generations_created == 1
