"""``chuizi batch``: one request a line in, one result a line out, resumable through a journal.

The input is read and checked whole before anything is sent: a line that cannot be right
(bad JSON, a field of the wrong type, what the catalogue refuses) becomes an ``invalid``
result and never reaches the client. The valid requests go to ``client.as_completed`` with
the journal, which makes a second run of the same command resume instead of paying again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import attrs

from . import (
    APIConnectionError,
    AsCompleted,
    ChuiziError,
    Client,
    CostLimitExceeded,
    Generation,
    GenerationRequest,
    InsufficientBalanceError,
    InvalidRequest,
    Journal,
    NotSubmitted,
    Video,
)
from ._batch import request_keys
from ._cli_common import UsageError
from ._cli_progress import Display, Tally, format_duration, format_money
from ._exceptions import error_type, outcome_status
from ._report import write_report
from ._validation import validate

__all__ = [
    "BatchOptions",
    "InputLine",
    "error_info",
    "parse_line",
    "read_input",
    "report_path",
    "run_batch",
]

_FIELDS = frozenset(attrs.fields_dict(GenerationRequest))
# the fields whose JSON type is checked on its own in _type_error; every other is a string
_TYPED_FIELDS = frozenset({"duration", "reference_images", "watermark", "extra_body"})
_TEXT_FIELDS = tuple(
    field.name for field in attrs.fields(GenerationRequest) if field.name not in _TYPED_FIELDS
)
_DOWNLOADS_AT_ONCE = 4
_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # SIGTERM: docker stop, systemd, kill
_REFRESH_SECONDS = 0.25


@attrs.frozen(kw_only=True)
class InputLine:
    """One input line: a request to send, the reason it is never sent, or a blank line."""

    line: int
    request: GenerationRequest | None = None
    invalid: str | None = None
    blank: bool = False
    key: str | None = None
    model: str | None = None
    prompt: str | None = None


def _invalid(line: int, reason: str, fields: Mapping[str, Any] | None = None) -> InputLine:
    def text(name: str) -> str | None:
        value = fields.get(name) if fields is not None else None
        return value if isinstance(value, str) else None

    return InputLine(
        line=line, invalid=reason, key=text("key"), model=text("model"), prompt=text("prompt")
    )


def _type_error(fields: Mapping[str, Any]) -> str | None:
    """Why a known field has the wrong JSON type, or None."""
    for name in _TEXT_FIELDS:
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            return f"{name} must be a string, not {type(value).__name__}"
    duration = fields.get("duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)):
        return f"duration must be a whole number of seconds, not {duration!r}"
    references = fields.get("reference_images")
    if references is not None and not (
        isinstance(references, str)
        or (isinstance(references, list) and all(isinstance(r, str) for r in references))
    ):
        return "reference_images must be a list of URLs or file paths"
    watermark = fields.get("watermark")
    if watermark is not None and not isinstance(watermark, bool):
        return f"watermark must be true or false, not {watermark!r}"
    if fields.get("extra_body") is not None and not isinstance(fields["extra_body"], dict):
        return "extra_body must be a JSON object"
    if fields.get("key") == "":
        return "key must not be empty"
    return None


def _from_object(
    data: Mapping[str, Any], line: int, model: str | None, duration: int | None
) -> InputLine:
    fields = dict(data)
    if fields.get("model") is None and model is not None:
        fields["model"] = model
    if fields.get("duration") is None and duration is not None:
        fields["duration"] = duration
    problem = _type_error(fields)
    if problem is not None:
        return _invalid(line, problem, fields)
    known = {k: v for k, v in fields.items() if k in _FIELDS and v is not None}
    extra = {k: v for k, v in fields.items() if k not in _FIELDS}
    if extra:
        known["extra_body"] = {**known.get("extra_body", {}), **extra}
    try:
        request = GenerationRequest.coerce(known)
        validate(request)
    except InvalidRequest as exc:
        return _invalid(line, str(exc), fields)
    return InputLine(
        line=line, request=request, key=request.key, model=request.model, prompt=request.prompt
    )


def parse_line(text: str, line: int, *, model: str | None, duration: int | None) -> InputLine:
    """One non-blank line: a JSON object, or (with ``model``) a plain-text prompt."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            reason = getattr(exc, "msg", str(exc))
            column = getattr(exc, "colno", None)
            where = "" if column is None else f" column {column}"
            if not reason.endswith(" at"):
                where = f" (at{where})" if where else ""
            return _invalid(line, f"invalid JSON: {reason}{where}")
        if not isinstance(data, dict):
            return _invalid(line, "not a JSON object")
        return _from_object(data, line, model, duration)
    if model is None:
        return _invalid(
            line, "not a JSON object; plain-text prompts (one a line) need --model MODEL"
        )
    return _from_object({"prompt": stripped}, line, model, duration)


def read_input(path: Path, *, model: str | None, duration: int | None) -> list[InputLine]:
    """Every line of ``path``, parsed and checked; a blank one is kept as such (``blank``),
    so that the results have one line per input line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"input file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"input {str(path)!r} is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"input file {str(path)!r} is not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    return [
        parse_line(raw, number, model=model, duration=duration)
        if raw.strip()
        else InputLine(line=number, blank=True)
        for number, raw in enumerate(text.splitlines(), start=1)
    ]


def error_info(exc: BaseException) -> dict[str, str]:
    """``{"message", "type"}`` of an error: the server's words where there are some, and the
    ``request_id`` of an error answer (the provider's support asks for it)."""
    message = getattr(exc, "message", None)
    if not isinstance(message, str) or not message:
        message = str(exc) or type(exc).__name__
    info = {"message": message, "type": error_type(exc)}
    request_id = getattr(exc, "request_id", None)
    if isinstance(request_id, str) and request_id:
        info["request_id"] = request_id
    return info


def _why_unreachable(exc: BaseException) -> str:
    """Why no connection was made, in a few words: what the OS or TLS said, found among the
    causes of the library's error (the transport raises it ``from`` the original)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return f"its host name does not resolve ({seen.strerror or seen})"
        if isinstance(seen, ssl.SSLError):
            return f"the TLS handshake failed ({getattr(seen, 'reason', None) or seen})"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, TimeoutError) and not isinstance(seen, ChuiziError):
            return "no answer in time"
        seen = seen.__cause__ or seen.__context__
    return str(exc)


def _record(
    line: InputLine,
    *,
    status: str,
    key: str | None = None,
    gen_id: str | None = None,
    video: Video | None = None,
    error: dict[str, str] | None = None,
    downloads: bool = False,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "line": line.line,
        "key": key,
        "model": line.model,
        "prompt": line.prompt,
        "status": status,
        "id": gen_id,
        "video_url": video.url if video is not None else None,
        "cost": str(video.cost) if video is not None and video.cost is not None else None,
    }
    if downloads:
        record["file"] = None
    record["error"] = error
    return record


def report_path(results: Path) -> Path:
    """The HTML report beside a results file: ``results.jsonl`` -> ``results.html``."""
    if results.suffix.lower() in ("", ".html", ".htm"):
        return results.with_name(results.name + ".html")
    return results.with_suffix(".html")


def write_results(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Write ``records`` as JSONL to a temporary file beside ``path``, then rename it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


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
    keys: list[str | None] = attrs.field(init=False)
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
        self.keys = [line.key for line in self.lines]
        requests = [r for p in self.positions if (r := self.lines[p].request) is not None]
        for position, key in zip(self.positions, request_keys(requests), strict=True):
            self.keys[position] = key
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
                record = _record(
                    line,
                    status="pending",
                    key=self.keys[position],
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
                self.records[position] = _record(line, status="blank", downloads=files)
            elif line.invalid is not None:
                error = {"message": line.invalid, "type": error_type(InvalidRequest(line.invalid))}
                record = _record(line, status="invalid", key=line.key, error=error, downloads=files)
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
                f"cannot reach {self.client.base_url}: {_why_unreachable(stopped)}; nothing more "
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
                f"the key's daily spending limit was reached ({stopped.message}): run the same "
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
        record = _record(
            line,
            status=status,
            key=handle.key or self.keys[position],
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
