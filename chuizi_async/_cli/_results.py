"""The output of ``chuizi batch``: one JSON record per input line, and how errors read in it."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import ChuiziError, Video, error_type
from .._report import write_atomically
from ._input import InputLine

__all__ = ["error_info", "make_record", "report_path", "why_unreachable", "write_results"]


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


def why_unreachable(exc: BaseException) -> str:
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


def make_record(
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
    """Write ``records`` as JSONL, through a temporary file beside ``path`` and a rename."""
    write_atomically(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
