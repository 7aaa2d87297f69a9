"""A batch's memory on disk, so that a crash never loses a clip nor pays for one twice.

One SQLite file (WAL, ``synchronous=FULL``), one transaction per state change:

    sending   the request's key and ``Idempotency-Key`` are recorded *before* it is sent
    sent      on the wire, no answer yet (recorded only with ``retry_submissions="safe"``)
    accepted  the server's generation id
    completed the video (URL, cost, duration)        -- final
    failed    the server's error                     -- final: a generation that failed, or
              a submission the server refused for good (400, 422, 404 for the model)
    uncertain it went out and no answer came back    -- final unless ``resend_uncertain``
              (``retry_submissions="safe"``): it may or may not have created a generation

Run the same batch again with the same journal: final requests come back from the journal with
no request at all; accepted ones are tracked by id, not submitted; ``sending`` ones are sent
again with the **same** ``Idempotency-Key``, so a server that honours it replays the first
answer instead of creating (and billing) a second generation. ``uncertain`` ones resolve with
``SubmissionUncertain`` again, unless the journal is opened with ``resend_uncertain=True``:
then they are sent again with their ``Idempotency-Key``, like ``sending`` ones. So do ``sent``
ones (the process died while they were on the wire) for a client with
``retry_submissions="safe"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import anyio
import attrs

from ._error_rules import error_type, is_final_error, is_final_refusal
from ._exceptions import (
    APIError,
    GenerationFailed,
    SubmissionUncertain,
    error_for_status,
)
from ._models import GenerationRequest, Video

__all__ = ["Journal", "JournalEntry", "request_fingerprint"]

EntryState = Literal["sending", "sent", "accepted", "completed", "failed", "uncertain"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    state TEXT NOT NULL,
    model TEXT,
    generation_id TEXT,
    video_url TEXT,
    cost TEXT,
    duration_seconds REAL,
    error_message TEXT,
    error_type TEXT,
    updated_at REAL NOT NULL,
    refusal TEXT
)
"""
# a journal written before the column: ``refusal`` (JSON) is what a refused submission's error
# answer said beyond its message and type (status, code, request id)
_COLUMNS = {"refusal": "TEXT"}


@attrs.frozen(kw_only=True)
class JournalEntry:
    """What the journal knows of one request."""

    key: str
    idempotency_key: str
    state: EntryState
    model: str | None = None
    generation_id: str | None = None
    video_url: str | None = None
    cost: Decimal | None = None
    duration_seconds: float | None = None
    error_message: str | None = None
    error_type: str | None = None
    status_code: int | None = None
    """The error status of a submission refused for good (no generation was created)."""
    error_code: str | None = None
    request_id: str | None = None

    @property
    def final(self) -> bool:
        return self.state in ("completed", "failed")

    def outcome(
        self, request: GenerationRequest | None = None
    ) -> Video | GenerationFailed | SubmissionUncertain | APIError:
        """The recorded result of a final (or uncertain) entry: a refused submission's error
        comes back as the same kind of ``APIError``."""
        if self.state == "uncertain":
            message = self.error_message or ""
            if message:
                message += (
                    " (journaled by an earlier run, not sent again: open the journal with "
                    "resend_uncertain=True to send it with the same Idempotency-Key)"
                )
            return SubmissionUncertain(self.idempotency_key, request, message)
        if self.state == "completed" and self.generation_id and self.video_url:
            return Video(
                id=self.generation_id,
                url=self.video_url,
                model=self.model,
                cost=self.cost,
                duration_seconds=self.duration_seconds,
            )
        if self.state == "failed" and self.status_code is not None:
            return error_for_status(
                self.status_code,
                self.error_message or "refused",
                self.error_type,
                code=self.error_code,
                request_id=self.request_id,
            )
        return GenerationFailed(
            self.generation_id, self.error_message or "generation failed", self.error_type
        )


def _canonical(value: object) -> object:
    if isinstance(value, bytes):
        return {"sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    return value


_NOT_IN_FINGERPRINT = frozenset({"key", "watermark"})  # watermark: folded into extra_body


def request_fingerprint(request: GenerationRequest) -> str:
    """A digest of what the request asks for (its content, not its ``key``)."""
    content = {
        field.name: _canonical(getattr(request, field.name))
        for field in attrs.fields(GenerationRequest)
        if field.name not in _NOT_IN_FINGERPRINT
    }
    if request.watermark is not None:
        # sent in extra_body before it was a field: the same body, the same digest
        extra = {"watermark": request.watermark, **(request.extra_body or {})}
        content["extra_body"] = _canonical(extra)
    text = json.dumps(content, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Journal:
    """A SQLite journal of one batch. Pass it (or its path) as ``journal=`` to a batch.

    Writes run in a worker thread (one at a time), so that an fsync never stalls the event
    loop. Use it as a context manager, or ``close()`` it.

    ``resend_uncertain``: send again, with their ``Idempotency-Key``, the requests an earlier
    run recorded as ``uncertain`` (once their absence from the account's usage is checked, or
    on a server known to honour it). By default they resolve with ``SubmissionUncertain``.
    """

    def __init__(self, path: str | os.PathLike[str], *, resend_uncertain: bool = False) -> None:
        self.path = Path(path)
        self.resend_uncertain = resend_uncertain
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(_SCHEMA)
            present = {row[1] for row in self._conn.execute("PRAGMA table_info(requests)")}
            for column, kind in _COLUMNS.items():
                if column not in present:
                    self._conn.execute(f"ALTER TABLE requests ADD COLUMN {column} {kind}")
        except BaseException:
            self._conn.close()  # not a journal (or unwritable): leave no connection behind
            raise
        self._limiter = anyio.CapacityLimiter(1)

    def __repr__(self) -> str:
        return f"<chuizi_async.Journal {str(self.path)!r}>"

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    # -- reading -------------------------------------------------------------------------------

    def get(self, request_key: str) -> JournalEntry | None:
        """The entry of one request key, or None if it was never recorded."""
        row = self._conn.execute(
            "SELECT key, idempotency_key, state, model, generation_id, video_url, cost, "
            "duration_seconds, error_message, error_type, refusal FROM requests WHERE key = ?",
            (request_key,),
        ).fetchone()
        if row is None:
            return None
        cost = Decimal(row[6]) if row[6] is not None else None
        refusal = _refusal(row[10])
        return JournalEntry(
            key=row[0],
            idempotency_key=row[1],
            state=row[2],
            model=row[3],
            generation_id=row[4],
            video_url=row[5],
            cost=cost,
            duration_seconds=row[7],
            error_message=row[8],
            error_type=row[9],
            status_code=refusal.get("status_code"),
            error_code=refusal.get("code"),
            request_id=refusal.get("request_id"),
        )

    def settled(self, entry: JournalEntry) -> bool:
        """Whether a rerun takes the entry's recorded outcome instead of sending anything."""
        return entry.final or (entry.state == "uncertain" and not self.resend_uncertain)

    def entries(self) -> list[JournalEntry]:
        """Every entry, oldest change first."""
        rows = self._conn.execute("SELECT key FROM requests ORDER BY updated_at").fetchall()
        return [entry for (request_key,) in rows if (entry := self.get(request_key)) is not None]

    # -- writing: one transaction per state change ---------------------------------------------

    async def _write(self, sql: str, **params: Any) -> int:
        """One statement in a transaction of its own (committed and fsynced); rows changed."""

        def run() -> int:
            with self._conn:  # a transaction, committed (and fsynced) on exit
                return self._conn.execute(sql, {**params, "now": time.time()}).rowcount

        return await anyio.to_thread.run_sync(run, limiter=self._limiter)

    async def record_sending(self, request_key: str, idempotency_key: str, model: str) -> None:
        """Before the request is sent: its request key and the ``Idempotency-Key`` it goes with."""
        await self._write(
            "INSERT INTO requests (key, idempotency_key, state, model, updated_at) "
            "VALUES (:request_key, :idem, 'sending', :model, :now) "
            "ON CONFLICT(key) DO UPDATE SET "
            "idempotency_key = excluded.idempotency_key, updated_at = excluded.updated_at, "
            "state = 'sending', error_message = NULL, error_type = NULL "
            "WHERE state IN ('sending', 'sent', 'uncertain')",
            request_key=request_key,
            idem=idempotency_key,
            model=model,
        )

    async def record_sent(self, request_key: str) -> None:
        """Just before the request goes out: from here the server may have received it."""
        await self._write(
            "UPDATE requests SET state = 'sent', updated_at = :now "
            "WHERE key = :request_key AND state = 'sending'",
            request_key=request_key,
        )

    async def record_not_created(self, request_key: str) -> None:
        """The server answered without accepting (or nothing went out): back to ``sending``."""
        await self._write(
            "UPDATE requests SET state = 'sending', updated_at = :now "
            "WHERE key = :request_key AND state = 'sent'",
            request_key=request_key,
        )

    async def forget_accepted(self) -> int:
        """Send again what a server that is gone accepted; how many entries that concerns.

        For a fresh simulator only (``chuizi batch --simulate``): it cannot know the ids an
        earlier one gave out. Each entry goes back to ``sending`` with its ``Idempotency-Key``.
        """
        return await self._write(
            "UPDATE requests SET state = 'sending', generation_id = NULL, updated_at = :now "
            "WHERE state = 'accepted'"
        )

    async def record_accepted(self, request_key: str, generation_id: str) -> None:
        await self._write(
            "UPDATE requests SET state = 'accepted', generation_id = :id, updated_at = :now "
            "WHERE key = :request_key AND state IN ('sending', 'sent', 'accepted')",
            id=generation_id,
            request_key=request_key,
        )

    async def record_uncertain(self, request_key: str, error: SubmissionUncertain) -> None:
        """Sent, and no answer came back: it may or may not have created a generation."""
        await self._write(
            "UPDATE requests SET state = 'uncertain', error_message = :message, "
            "error_type = 'submission_uncertain', updated_at = :now "
            "WHERE key = :request_key AND state IN ('sending', 'sent')",
            message=error.message,
            request_key=request_key,
        )

    async def record_outcome(self, request_key: str, outcome: Video | BaseException) -> None:
        """A final state: the video, or the generation's error."""
        if isinstance(outcome, Video):
            cost = str(outcome.cost) if outcome.cost is not None else None
            await self._write(
                "UPDATE requests SET state = 'completed', generation_id = :id, video_url = :url, "
                "cost = :cost, duration_seconds = :duration, updated_at = :now "
                "WHERE key = :request_key",
                id=outcome.id,
                url=outcome.url,
                cost=cost,
                duration=outcome.duration_seconds,
                request_key=request_key,
            )
            return
        message = getattr(outcome, "message", None) or str(outcome)
        gen_id = getattr(outcome, "generation_id", None)
        await self._write(
            "UPDATE requests SET state = 'failed', error_message = :message, "
            "error_type = :type, generation_id = COALESCE(:id, generation_id), "
            "updated_at = :now WHERE key = :request_key",
            message=message,
            type=error_type(outcome),
            id=gen_id,
            request_key=request_key,
        )

    async def record_refused(self, request_key: str, error: APIError) -> None:
        """A submission the server refused for good (see ``is_final_refusal``): final, so that
        a rerun sends it no more and gives the same error."""
        refusal = {"status_code": error.status_code, "code": error.code}
        if error.request_id:
            refusal["request_id"] = error.request_id
        await self._write(
            "UPDATE requests SET state = 'failed', error_message = :message, error_type = :type, "
            "refusal = :refusal, updated_at = :now "
            "WHERE key = :request_key AND state IN ('sending', 'sent')",
            message=error.message,
            type=error_type(error),
            refusal=json.dumps(refusal),
            request_key=request_key,
        )

    # the rules a journal follows, decided in _error_rules; here for callers of Journal
    is_final_refusal = staticmethod(is_final_refusal)
    is_final_error = staticmethod(is_final_error)


def _refusal(raw: str | None) -> dict[str, Any]:
    """The ``refusal`` column: what a refused submission's answer said, else nothing."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        name: value
        for name, value in data.items()
        if name in ("status_code", "code", "request_id")
        and isinstance(value, int if name == "status_code" else str)
        and not isinstance(value, bool)
    }
