"""The ``chuizi`` command line, against the simulator.

Most tests run ``main([...])`` in a worker thread (it runs its own event loop) against a
``FakeChuizi`` running in the test's loop, reached through ``CHUIZI_API_KEY`` and
``CHUIZI_BASE_URL`` so that the simulator's counters show what the CLI sent. Ctrl-C is
tested on a real subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import attrs
import pytest
import pytest_asyncio

import chuizi_async as ca
from chuizi_async._batch_journal import request_keys
from chuizi_async._cli import main
from chuizi_async._cli._input import parse_line
from chuizi_async._cli._output import format_duration
from chuizi_async._cli._progress import LiveDisplay, Tally
from chuizi_async.testing import FakeChuizi, Faults

from .conftest import wait_until

KEY = "ck-CliTestSecretKey0123456789abcdef"
FAST = ["--poll-interval", "0.02"]


@pytest_asyncio.fixture
async def sim(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeChuizi]:
    """A simulator the CLI reaches through the environment variables."""
    async with FakeChuizi(speed=1000, fail_pattern="(?i)forbidden", api_key=KEY) as server:
        monkeypatch.setenv("CHUIZI_API_KEY", KEY)
        monkeypatch.setenv("CHUIZI_BASE_URL", server.base_url)
        yield server


async def cli(*argv: str) -> int:
    """``main(argv)`` in a worker thread, so that the simulator keeps serving."""
    return await anyio.to_thread.run_sync(main, list(argv))


def write_lines(path: Path, *lines: str | dict[str, Any]) -> Path:
    text = "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


def read_results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def submitted_prompts(server: FakeChuizi) -> list[str]:
    return [
        r.json["prompt"]
        for r in server.requests_log
        if r.method == "POST" and isinstance(r.json, dict)
    ]


MIXED = (
    {"model": "google/veo-3.1-fast", "prompt": "a cat watching rain", "duration": 5},
    {"model": "google/veo-3.1-fast", "prompt": "a forbidden ritual", "key": "bad-1"},
    "",
    '{"model": "google/veo-3.1-fast", "prompt": "broken json',
    {"model": "google/veo-3.1", "prompt": "far too long", "duration": 20},
    {"model": "bailian/wan2.6-i2v", "prompt": "no source image"},
    {"model": "google/veo-3.1-fast", "prompt": "duration as text", "duration": "5"},
    "a plain prompt, but no --model",
    {"model": "google/veo-3.1-lite", "prompt": "with extras", "watermark": False},
)
MIXED_STATUSES = [
    "completed",
    "failed",
    "blank",
    "invalid",
    "invalid",
    "invalid",
    "invalid",
    "invalid",
    "completed",
]


def check_mixed(results: list[dict[str, Any]]) -> None:
    assert [r["status"] for r in results] == MIXED_STATUSES
    assert [r["line"] for r in results] == list(range(1, 10))  # one row per input line
    assert results[2] == {
        "line": 3,
        "key": None,
        "model": None,
        "prompt": None,
        "status": "blank",
        "id": None,
        "video_url": None,
        "cost": None,
        "error": None,
    }
    results = results[:2] + results[3:]
    done, failed = results[0], results[1]
    assert done["key"] == request_keys([ca.GenerationRequest.coerce(MIXED[0])])[0]
    assert done["id"].startswith("gen-") and done["video_url"].endswith(".mp4")
    assert Decimal(done["cost"]) > 0 and done["error"] is None
    assert done["model"] == "google/veo-3.1-fast" and done["prompt"] == "a cat watching rain"
    assert failed["key"] == "bad-1" and failed["id"].startswith("gen-")
    assert failed["error"] == {
        "message": "Content policy violation",
        "type": "invalid_request_error",
    }
    assert {r["error"]["type"] for r in results[2:7]} == {"invalid_request_error"}
    reasons = [r["error"]["message"] for r in results[2:7]]
    assert reasons[0].startswith("invalid JSON")
    assert "out of range" in reasons[1] and "1..8" in reasons[1]
    assert "image" in reasons[2]
    assert "duration" in reasons[3]
    assert "--model" in reasons[4]
    assert all(r["id"] is None and r["video_url"] is None for r in results[2:7])


# -- batch -----------------------------------------------------------------------------------


def test_batch_on_the_built_in_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *MIXED)
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(source), "-o", str(out), "--simulate", "--speed", "2000"]) == 1
    check_mixed(read_results(out))
    assert (tmp_path / "out.jsonl.journal").exists()
    page = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert page.count('<article class="card') == 8 and "s-blank" not in page  # a card a clip
    err = capsys.readouterr().err
    assert "line 2 failed" in err
    assert "8 clips: 2 completed, 1 failed, 5 invalid, 0 not submitted; cost $0.25;" in err


def test_a_simulated_batch_resends_what_an_earlier_simulator_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        {"key": "a", "model": "google/veo-3.1-fast", "prompt": "a harbour at dawn"},
    )
    out = tmp_path / "out.jsonl"

    async def interrupted_earlier_run() -> None:  # accepted, then the process died
        with ca.Journal(tmp_path / "out.jsonl.journal") as journal:
            await journal.record_sending("a", "chuizi-0123", "google/veo-3.1-fast")
            await journal.record_accepted("a", "gen-of-a-simulator-long-gone")

    asyncio.run(interrupted_earlier_run())
    assert main(["batch", str(source), "-o", str(out), "--simulate", "--speed", "2000"]) == 0
    (result,) = read_results(out)
    assert result["status"] == "completed"  # not a 404 from the new simulator
    assert result["id"] != "gen-of-a-simulator-long-gone"
    assert "sent again" in capsys.readouterr().err


async def test_batch_statuses_and_nothing_sent_for_invalid_lines(
    sim: FakeChuizi, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "in.jsonl", *MIXED)
    out = tmp_path / "out.jsonl"
    assert await cli("batch", str(source), "--output", str(out), *FAST) == 1
    check_mixed(read_results(out))
    assert sorted(submitted_prompts(sim)) == [
        "a cat watching rain",
        "a forbidden ritual",
        "with extras",
    ]
    bodies = {r.json["prompt"]: r.json for r in sim.requests_log if r.method == "POST"}
    assert bodies["with extras"]["watermark"] is False  # a known field, sent as given


def test_watermark_is_read_as_a_known_field_and_must_be_a_boolean() -> None:
    base = '{"model": "google/veo-3.1-fast", "prompt": "a cat", '
    good = parse_line(base + '"watermark": true}', 1, model=None, duration=None)
    assert good.request is not None and good.request.watermark is True
    assert good.request.extra_body is None
    bad = parse_line(base + '"watermark": "no"}', 2, model=None, duration=None)
    assert bad.request is None
    assert bad.invalid == "watermark must be true or false, not 'no'"


@pytest.mark.parametrize(
    "field", ["model", "prompt", "image", "key", "aspect_ratio", "resolution", "video"]
)
def test_a_text_field_of_a_line_must_be_a_string(field: str) -> None:
    fields: dict[str, Any] = {"model": "google/veo-3.1-fast", "prompt": "a cat", field: 7}
    line = parse_line(json.dumps(fields), 1, model=None, duration=None)
    assert line.request is None
    assert line.invalid == f"{field} must be a string, not int"


def test_batch_help_names_every_request_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", "--help"]) == 0
    known = capsys.readouterr().out.split("Known fields: ", 1)[1].split(";", 1)[0]
    names = {field.strip() for field in known.replace("\n", " ").split(",")}
    assert names == set(attrs.fields_dict(ca.GenerationRequest))


async def test_plain_text_prompts_with_model_and_duration(
    sim: FakeChuizi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "prompts.txt", "a cat", "", "a dog  ", "a fox")
    out = tmp_path / "out.jsonl"
    argv = ["batch", str(source), "-o", str(out), "--model", "google/veo-3.1-lite"]
    assert await cli(*argv, "--duration", "4", "--concurrency", "2", *FAST) == 0
    results = read_results(out)
    assert [r["prompt"] for r in results] == ["a cat", None, "a dog", "a fox"]
    assert [r["status"] for r in results] == ["completed", "blank", "completed", "completed"]
    assert {r["model"] for r in results} == {"google/veo-3.1-lite", None}
    bodies = [r.json for r in sim.requests_log if r.method == "POST"]
    assert [b["duration"] for b in bodies] == [4, 4, 4]
    assert capsys.readouterr().err.count(" completed ") == 3  # one line per clip


async def test_a_finished_batch_run_again_sends_and_downloads_nothing(
    sim: FakeChuizi, tmp_path: Path
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        {"model": "google/veo-3.1-fast", "prompt": "one", "key": "k1"},
        {"model": "google/veo-3.1-fast", "prompt": "two"},
        {"model": "google/veo-3.1-fast", "prompt": "two"},  # the same twice: two clips
    )
    out, videos = tmp_path / "out.jsonl", tmp_path / "videos"
    argv = ["batch", str(source), "-o", str(out), "--download-dir", str(videos), *FAST]
    assert await cli(*argv) == 0
    first = out.read_bytes()
    results = read_results(out)
    assert len({r["id"] for r in results}) == 3
    assert all(Path(r["file"]).is_file() for r in results)
    assert {p.name for p in videos.iterdir()} == {f"{r['id']}.mp4" for r in results}
    requests, media = sim.counters.requests, sim.counters.media_requests
    assert (sim.counters.submissions, media) == (3, 3)

    assert await cli(*argv) == 0
    assert out.read_bytes() == first
    assert (sim.counters.requests, sim.counters.media_requests) == (requests, media)


async def test_max_cost_stops_submissions(sim: FakeChuizi, tmp_path: Path) -> None:
    line = {"model": "google/veo-3.1-fast", "duration": 5}  # $0.15 each on the simulator
    source = write_lines(
        tmp_path / "in.jsonl", *({**line, "prompt": f"clip {n}"} for n in range(4))
    )
    out = tmp_path / "out.jsonl"
    assert await cli("batch", str(source), "-o", str(out), "--max-cost", "0.20", *FAST) == 1
    results = read_results(out)
    assert [r["status"] for r in results] == ["completed"] + ["not_submitted"] * 3
    assert {r["error"]["type"] for r in results[1:]} == {"max_cost"}
    assert all("max_cost" in r["error"]["message"] for r in results[1:])
    assert sim.counters.submissions == 1


async def test_a_402_reports_the_rest_as_not_submitted(sim: FakeChuizi, tmp_path: Path) -> None:
    sim.balance = Decimal("0.20")  # one $0.15 clip, then 402
    source = write_lines(
        tmp_path / "in.jsonl",
        *({"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(3)),
    )
    out = tmp_path / "out.jsonl"
    assert await cli("batch", str(source), "-o", str(out), "--concurrency", "1", *FAST) == 1
    results = read_results(out)
    assert [r["status"] for r in results] == ["completed", "not_submitted", "not_submitted"]
    assert {r["error"]["type"] for r in results[1:]} == {"insufficient_quota"}

    sim.balance = Decimal(100)  # topped up: a rerun sends the rest
    assert await cli("batch", str(source), "-o", str(out), "--concurrency", "1", *FAST) == 0
    assert [r["status"] for r in read_results(out)] == ["completed"] * 3


async def test_a_request_the_server_refused_for_good_is_not_sent_again(
    sim: FakeChuizi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        {"model": "acme/no-such-model", "prompt": "unknown model: 404"},
        {
            "model": "google/veo-3.1-fast",
            "prompt": "a bad body: 400",
            "extra_body": {"aspect_ratio": "wide"},
        },
        {"model": "google/veo-3.1-fast", "prompt": "a good one"},
    )
    out = tmp_path / "out.jsonl"
    assert await cli("batch", str(source), "-o", str(out), *FAST) == 1
    first = read_results(out)
    assert [r["status"] for r in first] == ["failed", "invalid", "completed"]
    assert [r["error"]["type"] for r in first[:2]] == ["not_found", "invalid_request_error"]
    assert all(r["error"]["request_id"].startswith("req_") for r in first[:2])
    assert sim.counters.submissions == 3

    assert await cli("batch", str(source), "-o", str(out), *FAST) == 1  # a rerun
    assert sim.counters.submissions == 3  # nothing sent again
    assert read_results(out) == first


async def test_an_uncertain_clip_is_reported_and_resent_only_with_resend_uncertain(
    sim: FakeChuizi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.honour_idempotency = False
    sim.faults = Faults(drop_after_create_at={2})  # created, then the answer is lost
    source = write_lines(
        tmp_path / "in.jsonl",
        *({"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(3)),
    )
    out = tmp_path / "out.jsonl"
    argv = ["batch", str(source), "-o", str(out), "--concurrency", "1", *FAST]
    safe = [*argv, "--retry-submissions", "safe"]
    assert await cli(*safe) == 1
    results = read_results(out)
    assert [r["status"] for r in results] == ["completed", "uncertain", "completed"]
    posted = [r.header("Idempotency-Key") for r in sim.requests_log if r.method == "POST"]
    assert len(posted) == 3
    uncertain = results[1]
    assert uncertain["id"] is None
    assert uncertain["error"]["type"] == "submission_uncertain"
    assert str(posted[1]) in uncertain["error"]["message"]
    err = capsys.readouterr().err
    assert "1 uncertain" in err
    assert "--resend-uncertain" in err
    assert sim.counters.generations_created == 3

    sim.faults = None
    assert await cli(*safe) == 1  # a rerun sends nothing
    assert [r["status"] for r in read_results(out)] == ["completed", "uncertain", "completed"]
    assert sim.counters.submissions == 3

    assert await cli(*safe, "--resend-uncertain") == 0
    assert [r["status"] for r in read_results(out)] == ["completed"] * 3
    posted = [r.header("Idempotency-Key") for r in sim.requests_log if r.method == "POST"]
    assert posted[3:] == [posted[1]]  # the same Idempotency-Key
    # this server ignores the key: resending was the user's call, and it billed a second one
    assert sim.counters.generations_created == 4


def test_retry_submissions_must_be_idempotent_or_safe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "in.jsonl", "a cat")
    argv = ["batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--model", "google/veo-3.1"]
    assert main([*argv, "--simulate", "--retry-submissions", "sometimes"]) == 2
    assert "--retry-submissions" in capsys.readouterr().err


async def test_a_403_daily_limit_reports_the_rest_as_not_submitted(
    sim: FakeChuizi, tmp_path: Path
) -> None:
    sim.daily_limit = Decimal("0.20")  # one $0.15 clip, then 403 daily_limit_exceeded
    source = write_lines(
        tmp_path / "in.jsonl",
        *({"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(3)),
    )
    out = tmp_path / "out.jsonl"
    assert await cli("batch", str(source), "-o", str(out), "--concurrency", "1", *FAST) == 1
    results = read_results(out)
    assert [r["status"] for r in results] == ["completed", "not_submitted", "not_submitted"]
    assert {r["error"]["type"] for r in results[1:]} == {"permission_error"}
    assert sim.counters.submissions == 2


async def test_the_results_file_has_the_billed_cost_when_the_status_has_none(
    sim: FakeChuizi, tmp_path: Path
) -> None:
    sim.dialect = "reference"
    sim.cost_in_status = False
    sim.billing_after_completion = True
    source = write_lines(
        tmp_path / "in.jsonl",
        *({"model": "google/veo-3.1-fast", "prompt": f"clip {n}", "duration": 5} for n in range(3)),
    )
    out = tmp_path / "out.jsonl"
    assert await cli("batch", str(source), "-o", str(out), *FAST) == 0
    results = read_results(out)
    assert [Decimal(r["cost"]) for r in results] == [Decimal("0.15")] * 3
    billing = [r for r in sim.requests_log if r.path == "/v1/generation"]
    assert sorted(r.query["id"] for r in billing) == sorted(r["id"] for r in results)
    requests = sim.counters.requests
    assert await cli("batch", str(source), "-o", str(out), *FAST) == 0  # from the journal
    assert read_results(out) == results and sim.counters.requests == requests


# -- usage errors ----------------------------------------------------------------------------


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "out.jsonl")
    assert main(["batch", str(tmp_path / "missing.jsonl"), "-o", out, "--simulate"]) == 2
    assert "missing.jsonl" in capsys.readouterr().err

    source = write_lines(tmp_path / "in.jsonl", {"model": "google/veo-3.1", "prompt": "x"})
    assert main(["batch", str(source), "-o", out]) == 2  # no key, no --simulate
    assert "CHUIZI_API_KEY" in capsys.readouterr().err
    assert main(["generate", "a cat", "--model", "google/veo-3.1"]) == 2
    assert "CHUIZI_API_KEY" in capsys.readouterr().err

    assert main(["batch", str(source)]) == 2  # --output is required
    assert main(["batch", str(source), "-o", out, "--concurrency", "0"]) == 2
    assert main(["batch", str(source), "-o", out, "--max-cost", "lots"]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["batch", str(source), "-o", str(tmp_path / "nowhere" / "out.jsonl")]) == 2
    journal = ["--journal", str(source), "--simulate"]  # not a journal: refused, not clobbered
    assert main(["batch", str(source), "-o", out, *journal]) == 2
    assert "journal" in capsys.readouterr().err
    assert json.loads(source.read_text())["prompt"] == "x"
    assert not (tmp_path / "out.jsonl").exists()
    assert main(["batch", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "not_submitted" in help_text and "SIGTERM" in help_text
    assert "blank lines included" in help_text and "1-based input line number" in help_text


# -- generate, status, models ----------------------------------------------------------------


async def test_generate(
    sim: FakeChuizi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "cat.mp4"
    argv = ["generate", "a cat", "--model", "google/veo-3.1-fast", *FAST]
    assert await cli(*argv, "--output", str(target)) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith(sim.media_base_url) and target.stat().st_size > 0

    assert await cli(*argv, "--json", "--duration", "4") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "completed" and result["cost"] == "0.12000000"

    assert await cli("generate", "forbidden", "--model", "google/veo-3.1-fast", *FAST) == 1
    assert "Content policy violation" in capsys.readouterr().err

    assert await cli("generate", "x", "--model", "google/veo-3.1", "--duration", "30") == 2
    assert "out of range" in capsys.readouterr().err
    assert sim.counters.submissions == 3


async def test_status(sim: FakeChuizi, capsys: pytest.CaptureFixture[str]) -> None:
    async with ca.Client(KEY, base_url=sim.base_url) as client:
        good = await client.submit("google/veo-3.1-fast", "a cat")
        bad = await client.submit("google/veo-3.1-fast", "forbidden")
    assert good.id is not None and bad.id is not None
    sim.complete(good.id)
    sim.fail(bad.id, message="Upstream generation failed")

    assert await cli("status", good.id) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{good.id}  completed  {sim.media_base_url}") and "$0." in line

    assert await cli("status", good.id, bad.id, "gen-0000000000000000", "--json") == 1
    entries = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["status"] for e in entries] == ["completed", "failed", "error"]
    assert entries[0]["video_url"].endswith(".mp4") and entries[0]["cost"]
    assert entries[1]["error"]["message"] == "Upstream generation failed"
    assert entries[2]["error"]["type"] == "not_found"
    assert entries[2]["error"]["request_id"].startswith("req_")  # to quote to support


def test_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert all(model in table for model in ca.MODELS)
    assert "image-to-video" in table and "Google Vertex" in table
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == list(ca.MODELS)
    assert rows[0].keys() == {"id", "provider", "kind", "max_duration", "notes"}


# -- the key stays secret --------------------------------------------------------------------


async def test_the_key_is_in_no_file_and_no_output(
    sim: FakeChuizi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        {"model": "google/veo-3.1-fast", "prompt": "a cat"},
        {"model": "google/veo-3.1-fast", "prompt": "forbidden"},
        "{not json",
    )
    out = tmp_path / "out.jsonl"
    argv = ["-o", str(out), "--download-dir", str(tmp_path / "v"), "-v", *FAST]
    assert await cli("batch", str(source), *argv) == 1
    results = read_results(out)
    assert await cli("generate", "a dog", "-m", "google/veo-3.1-fast", "--json", "-v", *FAST) == 0
    assert await cli("status", results[0]["id"], results[1]["id"], "-v") == 1
    captured = capsys.readouterr()
    assert "POST" in captured.err  # -v logs every request...
    assert KEY not in captured.out + captured.err  # ...without the key
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"out.jsonl", "out.jsonl.journal"}
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
    assert sim.counters.media_requests_with_auth == 0


# -- Ctrl-C ----------------------------------------------------------------------------------


async def _start_batch(
    server: FakeChuizi, tmp_path: Path, clips: int
) -> tuple[anyio.abc.Process, Path]:
    source = write_lines(
        tmp_path / "in.jsonl",
        *({"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(clips)),
    )
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "CHUIZI_API_KEY": server.api_key, "CHUIZI_BASE_URL": server.base_url}
    command = [sys.executable, "-m", "chuizi_async", "batch", str(source), "-o", str(out)]
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        process = await anyio.open_process(
            [*command, "--concurrency", "2", "--poll-interval", "0.05"], env=env, stderr=stderr
        )
    await wait_until(lambda: server.counters.submissions >= 2, timeout=15)
    return process, out


async def test_first_ctrl_c_stops_submitting_and_finishes_the_accepted(tmp_path: Path) -> None:
    async with FakeChuizi(speed=60) as server:  # a clip takes 0.5 to 1 s
        process, out = await _start_batch(server, tmp_path, clips=6)
        async with process:
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(15):
                assert await process.wait() == 1
        err = (tmp_path / "stderr.txt").read_text()
        results = read_results(out)
        assert [r["status"] for r in results] == ["completed"] * 2 + ["not_submitted"] * 4
        assert {r["error"]["type"] for r in results[2:]} == {"not_submitted"}
        assert all("interrupted" in r["error"]["message"] for r in results[2:])
        assert server.counters.submissions == 2
        assert "Ctrl-C" in err


async def test_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    async with FakeChuizi(speed=1) as server:  # a clip takes 30 s or more
        process, out = await _start_batch(server, tmp_path, clips=4)
        async with process:
            process.send_signal(signal.SIGINT)
            await anyio.sleep(0.2)
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(5):
                assert await process.wait() == 130
        results = read_results(out)  # written on the way out; the journal keeps the rest
        assert [r["status"] for r in results[:2]] == ["pending", "pending"]
        assert all(r["id"] and r["id"].startswith("gen-") for r in results[:2])
        assert server.counters.submissions == 2
        with ca.Journal(out.with_name("out.jsonl.journal")) as journal:
            assert all(r["key"] for r in results)  # every row has its request key
            entries = [journal.get(r["key"]) for r in results[:2]]
            assert [e.generation_id for e in entries if e is not None] == [
                r["id"] for r in results[:2]
            ]


# -- the live display ------------------------------------------------------------------------


def test_live_display_renders() -> None:
    from rich.console import Console

    buffer = io.StringIO()
    display = LiveDisplay(Console(file=buffer, force_terminal=True, width=100))
    tally = Tally(total=3)
    display.start(tally)
    tally.completed, tally.accepted_done, tally.waited, tally.processing = 1, 1, 1, 1
    tally.cost = Decimal("0.15")
    display.refresh(tally)
    record = {"line": 2, "status": "failed", "id": "gen-1", "error": {"message": "nope"}}
    tally.failed = 1
    display.clip(tally, record)
    display.stop()
    display.summary(tally, {"cost": "$0.1500"})
    text = buffer.getvalue()
    assert "2/3" in text and "$0.1500" in text and "nope" in text and "ETA" in text
    assert format_duration(42) == "42s" and format_duration(185) == "3m05s"


def test_the_displays_count_uncertain_clips_only_when_there_are_some() -> None:
    from rich.console import Console

    assert "uncertain" not in Tally(total=2).counts()
    tally = Tally(total=2, completed=1, uncertain=1)
    assert tally.finished == 2
    assert tally.counts().endswith(", 1 uncertain")
    buffer = io.StringIO()
    display = LiveDisplay(Console(file=buffer, force_terminal=True, width=100))
    display.start(tally)
    record = {"line": 2, "status": "uncertain", "id": None, "error": {"message": "no answer"}}
    display.clip(tally, record)
    display.stop()
    display.summary(tally, {})
    text = buffer.getvalue()
    assert "uncertain" in text and "no answer" in text


# -- SIGTERM (docker stop, systemd) ----------------------------------------------------------


async def test_sigterm_stops_submitting_finishes_the_accepted_and_writes_the_results(
    tmp_path: Path,
) -> None:
    async with FakeChuizi(speed=60) as server:  # a clip takes 0.5 to 1 s
        process, out = await _start_batch(server, tmp_path, clips=6)
        async with process:
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await process.wait() == 1  # not all completed
        results = read_results(out)
        assert [r["status"] for r in results] == ["completed"] * 2 + ["not_submitted"] * 4
        assert all(r["key"] for r in results)
        assert server.counters.submissions == 2
        assert "SIGTERM: no new submissions" in (tmp_path / "stderr.txt").read_text()


async def test_a_second_sigterm_quits_at_once_with_the_results_so_far(tmp_path: Path) -> None:
    async with FakeChuizi(speed=1) as server:  # a clip takes 30 s or more
        process, out = await _start_batch(server, tmp_path, clips=4)
        async with process:
            process.send_signal(signal.SIGTERM)
            await anyio.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(5):
                assert await process.wait() == 128 + signal.SIGTERM
        results = read_results(out)
        assert [r["status"] for r in results] == ["pending"] * 2 + ["not_submitted"] * 2
        assert all(r["key"] for r in results)
        assert all(r["id"].startswith("gen-") for r in results[:2])


# -- a server that cannot be reached ---------------------------------------------------------


async def test_an_unreachable_server_stops_the_batch_with_one_line_that_says_why(
    tmp_path: Path,
) -> None:
    from chuizi_async._cli._batch_run import BatchOptions, run_batch
    from chuizi_async._cli._input import read_input
    from chuizi_async._cli._progress import PlainDisplay

    source = write_lines(
        tmp_path / "in.jsonl",
        *({"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(30)),
    )
    out = tmp_path / "out.jsonl"
    options = BatchOptions(output=out, journal=tmp_path / "journal")
    stream = io.StringIO()
    async with FakeChuizi(speed=1000) as server:
        await server.stop_listening()  # the port is closed: connection refused
        fast = 1000  # the client's time_scale: retries compressed too
        async with ca.Client(server.api_key, base_url=server.base_url, time_scale=fast) as client:
            with anyio.fail_after(10):
                lines = read_input(source, model=None, duration=None)
                assert await run_batch(client, lines, options, PlainDisplay(stream)) == 1
            assert client.stats.submissions == 1  # one request (and its retries), no more
    results = read_results(out)
    assert results[0]["status"] == "failed"
    assert results[0]["error"]["type"] == "connection_error"
    assert [r["status"] for r in results[1:]] == ["not_submitted"] * 29
    assert {r["error"]["type"] for r in results[1:]} == {"not_submitted"}
    assert "interrupted" not in stream.getvalue()
    why = [line for line in stream.getvalue().splitlines() if "cannot reach" in line]
    assert why == [
        f"chuizi: cannot reach {server.base_url}: connection refused; nothing more was sent. "
        "Check the network and the base URL (--base-url, $CHUIZI_BASE_URL), then run the "
        "same command again"
    ]


# -- demo, models, balance -------------------------------------------------------------------


def test_the_demo_exits_0_when_only_the_failures_on_purpose_failed_and_keeps_its_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the demo keeps its folder
    assert main(["demo", "--speed", "5000"]) == 0
    err = capsys.readouterr().err
    assert "as designed" in err and "2 that fail on purpose" in err
    summary = next(line for line in err.splitlines() if line.startswith("24 clips: "))
    printed = [
        Path(part.split(" ", 1)[1])
        for part in summary.split("; ")
        if part.startswith(("results ", "report "))
    ]
    assert len(printed) == 2 and all(path.is_file() for path in printed)  # kept, not deleted
    assert printed[0].parent.parent == tmp_path
    results = read_results(printed[0])
    assert [r["status"] for r in results].count("failed") == 2

    out = tmp_path / "demo.jsonl"
    assert main(["demo", "--speed", "5000", "-o", str(out)]) == 0
    assert len(read_results(out)) == 24 and out.with_suffix(".html").is_file()


async def test_models_with_a_key_lists_the_live_models_and_says_so(
    sim: FakeChuizi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("models") == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == f"12 models, live from {sim.base_url}/models"
    assert "$0.10/s" in text  # veo-3.1's price from the list
    assert [r for r in sim.requests_log if r.path == "/v1/models"]
    assert await cli("models", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["pricing"] and {"id", "owned_by", "aliases", "pricing"} <= rows[0].keys()
    assert await cli("models", "--builtin") == 0
    assert "built-in catalogue" in capsys.readouterr().out.splitlines()[0]


def test_models_without_a_key_is_the_built_in_catalogue_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "12 models, built-in catalogue (no key): the models the library checks before sending"
    )


async def test_balance_shows_the_keys_balance_and_limits(
    sim: FakeChuizi, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.balance = Decimal("42.5")
    sim.daily_limit = Decimal("10")
    assert await cli("balance") == 0
    text = capsys.readouterr().out
    assert "balance:         $42.50" in text and "daily limit:     $10.00" in text
    assert await cli("key", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert Decimal(info["balance"]) == Decimal("42.5")  # full precision in JSON
    assert KEY not in text


# -- money and columns -----------------------------------------------------------------------


def test_clip_lines_have_fixed_columns_and_costs_for_people() -> None:
    from chuizi_async._cli._progress import clip_line

    tally = Tally(total=30, last_line=31)
    records: list[dict[str, Any]] = [
        {"line": 4, "status": "failed", "id": None, "cost": None, "error": {"message": "nope"}},
        {
            "line": 31,
            "status": "completed",
            "id": "gen-0123456789abcdef",
            "cost": "0.15000000",
            "video_url": "https://media.chuizi.ai/videos/a.mp4",
            "error": None,
        },
        {"line": 5, "status": "not_submitted", "id": None, "error": {"message": "nope"}},
        {
            "line": 12,
            "status": "completed",
            "id": "gen-" + "x" * 24,
            "cost": "11.2",
            "video_url": "https://media.chuizi.ai/videos/b.mp4",
            "error": None,
        },
    ]
    lines = [clip_line(tally, r) for r in records]
    assert "$0.15 " in lines[1] and "$11.20 " in lines[3] and "0.1500" not in lines[1]
    assert len({line.index("line ") for line in lines}) == 1
    assert len({line.index(r["status"]) for line, r in zip(lines, records, strict=True)}) == 1
    details = {line.index("nope") for line in lines if "nope" in line}
    details |= {line.index("https") for line in lines if "https" in line}
    assert len(details) == 1  # the details start in one column


def test_why_a_server_cannot_be_reached_is_said_in_a_few_words() -> None:
    import socket
    import ssl

    from chuizi_async._cli._results import why_unreachable

    def raised_from(cause: BaseException, error: BaseException) -> BaseException:
        try:
            raise error from cause
        except BaseException as exc:
            return exc

    dns = socket.gaierror(-2, "Name or service not known")
    assert why_unreachable(raised_from(dns, ca.APIConnectError("x"))) == (
        "its host name does not resolve (Name or service not known)"
    )
    refused = ConnectionRefusedError(111, "Connect call failed")
    assert why_unreachable(raised_from(refused, ca.APIConnectError("x"))) == "connection refused"
    tls = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert why_unreachable(raised_from(tls, ca.APIConnectError("x"))).startswith(
        "the TLS handshake failed"
    )
    silent = raised_from(TimeoutError(), ca.APITimeoutError("the server did not answer in time"))
    assert why_unreachable(silent) == "no answer in time"
    assert why_unreachable(ca.APIConnectError("something else")) == "something else"


def _accepted_in(journal: Path) -> int:
    """How many requests the journal of a running batch (another process) has accepted."""
    import sqlite3

    if not journal.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(journal, timeout=1)) as conn:
            row = conn.execute("SELECT count(*) FROM requests WHERE state = 'accepted'").fetchone()
    except sqlite3.Error:  # not created yet
        return 0
    return int(row[0])


async def test_sigterm_on_a_simulated_batch_writes_the_results_of_what_was_accepted(
    tmp_path: Path,
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        *({"model": "google/veo-3.1-fast", "prompt": f"clip {n}"} for n in range(6)),
    )
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "chuizi_async", "batch", str(source), "-o", str(out)]
    options = ["--simulate", "--speed", "60", "--concurrency", "2", "--poll-interval", "0.05"]
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        process = await anyio.open_process([*command, *options], stderr=stderr)
    async with process:
        await wait_until(lambda: _accepted_in(tmp_path / "out.jsonl.journal") >= 2, timeout=15)
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            assert await process.wait() == 1
    results = read_results(out)
    statuses = [r["status"] for r in results]
    assert statuses[:2] == ["completed", "completed"]  # accepted: followed to the end
    assert set(statuses[2:]) <= {"completed", "not_submitted"} and "not_submitted" in statuses
    assert all(r["key"] for r in results)


def test_the_cli_reaches_the_library_through_its_public_names_or_says_why_not() -> None:
    """The CLI is a user of ``chuizi_async``: a private module it imports is either shared
    with the standalone simulator (the argparse types, the HTML report) or carries a comment
    on why the name it needs is not public."""
    import ast

    shared = {"_argtypes", "_report"}
    unexplained = []
    for path in sorted((Path(ca.__file__).parent / "_cli").glob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.ImportFrom) or node.level != 2 or not node.module:
                continue
            private = [part for part in node.module.split(".") if part.startswith("_")]
            if not private or private[0] in shared:
                continue
            said = "#" in lines[node.lineno - 1] or lines[node.lineno - 2].strip().startswith("#")
            if not said:
                unexplained.append(f"{path.name}:{node.lineno}: {node.module}")
    assert unexplained == []
