"""The run of ``chuizi batch``: the valid requests through ``client.as_completed`` with the
journal (a second run of the same command resumes instead of paying again), the records in
input order, the downloads, Ctrl-C and SIGTERM, the results file and the report.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import attrs

from .. import (
    APIConnectionError,
    AsCompleted,
    ChuiziError,
    Client,
    CostLimitExceeded,
    Generation,
    InsufficientBalanceError,
    InvalidRequest,
    Journal,
    NotSubmitted,
    Video,
    error_type,
)
from .._batch_journal import request_keys  # the keys a journaled batch derives: not public API
from .._error_rules import outcome_status  # the CLI's own vocabulary of outcomes
from .._report import write_report
from ._input import InputLine
from ._output import UsageError, format_duration, format_money
from ._progress import Display, Tally
from ._results import error_info, make_record, report_path, why_unreachable, write_results

__all__ = ["BatchOptions", "run_batch"]

_DOWNLOADS_AT_ONCE = 4
_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # SIGTERM: docker stop, systemd, kill
_REFRESH_SECONDS = 0.25


@attrs.frozen(kw_only=True)
class BatchOptions:
    output: Path
    journal: Path
    download_dir: Path | None = None
    concurrency: int | None = None
    max_cost: Decimal | None = None
    fresh_server: bool = False
    """A simulator started for this run: it cannot track what an earlier run's accepted."""
    resend_uncertain: bool = False
    """Send again (same ``Idempotency-Key``) what an earlier run journaled as uncertain."""


@attrs.define(eq=False)
class _Batch:
    """One run of a batch: the records in input order, the tally, the Ctrl-C handling."""

    client: Client
    lines: Sequence[InputLine]
    options: BatchOptions
    display: Display
    journal: Journal
    tally: Tally = attrs.field(init=False)
    records: list[dict[str, Any] | None] = attrs.field(init=False)
    positions: list[int] = attrs.field(init=False)
    request_keys: list[str | None] = attrs.field(init=False)
    """Each line's request key: its ``key``, else the one the journal derives (see
    ``request_keys``); a blank line's is None, an invalid one's its ``key`` if it has one."""
    batch: AsCompleted | None = None
    interrupts: int = 0
    cost_limited: int = 0
    interrupted: int = 0
    _downloads: anyio.Semaphore = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.tally = Tally(
            total=sum(not line.blank for line in self.lines),
            last_line=max((line.line for line in self.lines), default=0),
        )
        self.records = [None] * len(self.lines)
        self.positions = [i for i, line in enumerate(self.lines) if line.request is not None]
        self.request_keys = [line.key for line in self.lines]
        requests = [r for p in self.positions if (r := self.lines[p].request) is not None]
        for position, request_key in zip(self.positions, request_keys(requests), strict=True):
            self.request_keys[position] = request_key
        self._downloads = anyio.Semaphore(_DOWNLOADS_AT_ONCE)

    # -- results -------------------------------------------------------------------------

    def _finish(self, position: int, record: dict[str, Any]) -> None:
        self.records[position] = record
        status = record["status"]
        if status == "not_submitted":
            self.tally.not_submitted += 1
        else:
            setattr(self.tally, status, getattr(self.tally, status) + 1)
        if record.get("cost") is not None:
            self.tally.cost += Decimal(record["cost"])
        self.display.clip(self.tally, record)

    def snapshot(self) -> list[dict[str, Any]]:
        """A record for every line; lines still in flight say ``pending``."""
        ids = {
            self.positions[h.index]: h.id
            for h in self.client.pending
            if h.index is not None and 0 <= h.index < len(self.positions)
        }
        records = []
        for position, line in enumerate(self.lines):
            record = self.records[position]
            if record is None:
                record = make_record(
                    line,
                    status="pending",
                    key=self.request_keys[position],
                    gen_id=ids.get(position),
                    downloads=self.options.download_dir is not None,
                )
            records.append(record)
        return records

    def write(self) -> None:
        records = self.snapshot()
        write_results(self.options.output, records)
        output = self.options.output
        write_report(
            [r for r in records if r["status"] != "blank"],  # a card per request
            report_path(output),
            title=f"chuizi batch: {output.name}",
            elapsed=self.tally.elapsed,
        )

    # -- Ctrl-C and SIGTERM ----------------------------------------------------------------

    def on_signal(self, signum: int) -> None:
        """SIGINT (Ctrl-C) or SIGTERM (docker stop, systemd): the first stops submitting and
        writes the results (again at the end); the second writes them and quits at once
        (exit status 128 + the signal's number: 130, 143)."""
        self.interrupts += 1
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if self.interrupts == 1:
            self.display.note(
                f"{name}: no new submissions; waiting for the clips already accepted "
                "(Ctrl-C or SIGTERM again to quit at once, the journal keeps them)"
            )
            if self.batch is not None:
                self.batch.stop_submitting()
            self._try_write()
            return
        self.display.stop()
        self._try_write()
        sys.stderr.write(
            f"chuizi: interrupted ({name}); results so far in {self.options.output}, "
            "run the same command again to resume\n"
        )
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(128 + signum)

    def _try_write(self) -> None:
        try:
            self.write()
        except OSError as exc:
            self.display.note(f"could not write {self.options.output}: {exc.strerror}")

    # -- the run -------------------------------------------------------------------------

    async def run(self) -> None:
        self.display.start(self.tally)
        files = self.options.download_dir is not None
        for position, line in enumerate(self.lines):
            if line.blank:  # a row, to keep one per input line; not a clip
                self.records[position] = make_record(line, status="blank", downloads=files)
            elif line.invalid is not None:
                error = {"message": line.invalid, "type": error_type(InvalidRequest(line.invalid))}
                record = make_record(
                    line, status="invalid", key=line.key, error=error, downloads=files
                )
                self._finish(position, record)
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._refresh)
            async with anyio.create_task_group() as downloads:
                await self._consume(downloads)
            outer.cancel_scope.cancel()
        self.display.refresh(self.tally)

    async def _refresh(self) -> None:
        while True:
            self.tally.processing = len(self.client.pending)
            self.display.refresh(self.tally)
            await anyio.sleep(_REFRESH_SECONDS)

    async def _consume(self, downloads: anyio.abc.TaskGroup) -> None:
        requests = [r for p in self.positions if (r := self.lines[p].request) is not None]
        if not requests:
            return
        batch = self.client.as_completed(
            requests,
            concurrency=self.options.concurrency,
            journal=self.journal,
            max_cost=self.options.max_cost,
            fetch_costs=True,  # the results file has a cost column
        )
        async with batch:
            self.batch = batch
            if self.interrupts:
                batch.stop_submitting()
            async for handle in batch:
                self._handle(handle, downloads)
        stopped = batch.stopped_by
        if isinstance(stopped, APIConnectionError):
            self.display.note(
                f"cannot reach {self.client.base_url}: {why_unreachable(stopped)}; nothing more "
                "was sent. Check the network and the base URL (--base-url, $CHUIZI_BASE_URL), "
                "then run the same command again"
            )
        elif isinstance(stopped, InsufficientBalanceError):
            self.display.note(
                f"the balance ran out ({stopped.message}): top up, then run the same "
                "command again to submit the rest"
            )
        elif stopped is not None:
            self.display.note(
                f"the API key's daily spending limit was reached ({stopped.message}): run the same "
                "command again once it resets to submit the rest"
            )
        for model, refused in batch.stopped_models.items():
            self.display.note(f"{model} was refused ({refused.message}): not submitted again")
        if self.cost_limited:
            self.display.note(
                f"--max-cost {format_money(self.options.max_cost or Decimal(0))} reached: "
                f"{self.cost_limited} request(s) not submitted; raise it and run again to go on"
            )
        if self.interrupted:
            self.display.note(
                f"interrupted: {self.interrupted} request(s) not submitted; run the same "
                "command again to resume"
            )
        if self.tally.uncertain:
            self.display.note(
                f"{self.tally.uncertain} request(s) went out with no answer back (status "
                "uncertain): each may or may not have created a billed generation. Check the "
                "account's usage; --resend-uncertain sends them again with the same "
                "Idempotency-Key"
            )

    def _handle(self, handle: Generation, downloads: anyio.abc.TaskGroup) -> None:
        assert handle.index is not None
        position = self.positions[handle.index]
        line = self.lines[position]
        error = handle.exception()
        status = outcome_status(error, accepted=handle.id is not None)
        video = handle.result() if error is None else None
        if handle.id is not None:
            self.tally.accepted_done += 1
            self.tally.processing = max(0, self.tally.processing - 1)
            if handle.status is not None:  # checked in this run, not read from the journal
                self.tally.waited += 1
        if isinstance(error, CostLimitExceeded):
            self.cost_limited += 1
        elif isinstance(error, NotSubmitted) and error.reason == "interrupted":
            self.interrupted += 1  # Ctrl-C, SIGTERM (the unreachable server has its own note)
        record = make_record(
            line,
            status=status,
            key=handle.key or self.request_keys[position],
            gen_id=handle.id if handle.id is not None else (video.id if video else None),
            video=video,
            error=error_info(error) if error is not None else None,
            downloads=self.options.download_dir is not None,
        )
        if video is not None and self.options.download_dir is not None:
            downloads.start_soon(self._download, position, record, video)
            self.records[position] = record  # written in place once downloaded
            return
        self._finish(position, record)

    async def _download(self, position: int, record: dict[str, Any], video: Video) -> None:
        assert self.options.download_dir is not None
        async with self._downloads:
            try:
                path = await self.client.download(video, self.options.download_dir)
            except (ChuiziError, OSError) as exc:
                info = error_info(exc)
                info["message"] = f"download failed: {info['message']}"
                record["error"] = info
                self.tally.download_errors += 1
            else:
                record["file"] = str(path)
        self._finish(position, record)


async def run_batch(
    client: Client,
    lines: Sequence[InputLine],
    options: BatchOptions,
    display: Display,
    *,
    summary_rows: Callable[[Tally], dict[str, str]] | None = None,
) -> int:
    """Run the batch, write the results, show the summary; the exit status (0 or 1)."""
    try:
        journal = Journal(options.journal, resend_uncertain=options.resend_uncertain)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot use {str(options.journal)!r} as the journal: {exc}") from None
    with journal:
        return await _run_batch(client, lines, options, display, journal, summary_rows)


async def _run_batch(
    client: Client,
    lines: Sequence[InputLine],
    options: BatchOptions,
    display: Display,
    journal: Journal,
    summary_rows: Callable[[Tally], dict[str, str]] | None,
) -> int:
    if options.fresh_server:
        resent = await journal.forget_accepted()
        if resent:
            display.note(
                f"{resent} clip(s) accepted by an earlier run's simulator are sent again to "
                "this one (it cannot know their ids)"
            )
    run = _Batch(client, lines, options, display, journal)
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in _SIGNALS:
        try:
            loop.add_signal_handler(signum, run.on_signal, signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            break
        handled.append(signum)
    try:
        await run.run()
    except ChuiziError as exc:
        display.stop()
        run._try_write()
        sys.stderr.write(f"chuizi batch: {exc}; results so far in {options.output}\n")
        return 1
    except BaseException:
        display.stop()
        run._try_write()
        raise
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
    display.stop()
    try:
        run.write()
    except OSError as exc:
        raise UsageError(f"cannot write {str(options.output)!r}: {exc.strerror}") from None
    tally = run.tally
    rows = {
        "cost": format_money(tally.cost),
        "time": format_duration(tally.elapsed),
    }
    if tally.download_errors:
        rows["download errors"] = str(tally.download_errors)
    if summary_rows is not None:
        rows.update(summary_rows(tally))
    rows["results"] = str(options.output)
    rows["report"] = str(report_path(options.output))
    display.summary(tally, rows)
    all_done = tally.completed == tally.total and not tally.download_errors
    return 0 if all_done else 1
