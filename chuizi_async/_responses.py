"""Turning an answer into JSON or into the typed error it stands for."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from ._exceptions import APIError, RateLimitError, ResponseFormatError, error_for_status
from ._retries import header, parse_retry_after
from ._transport import Response
from ._urls import redact

__all__ = ["decode_json", "error_from_response", "request_id_note"]


_decoder = json.JSONDecoder()  # json.loads' own, without its per-call checks of options


def decode_json(response: Response) -> object:
    """The answer's JSON; a ``ResponseFormatError`` if it is not JSON."""
    content = response.content
    try:  # UTF-8, as JSON over HTTP is: json.loads(bytes) would first sniff the encoding
        return _decoder.decode(content.decode())
    except (ValueError, RecursionError):
        pass
    try:  # UTF-16 or 32, a byte order mark: json's own detection, or the error
        return json.loads(content)
    except (ValueError, RecursionError) as exc:
        kind = response.headers.get("Content-Type", "unknown type")
        raise ResponseFormatError(
            f"HTTP {response.status}: the answer is not valid JSON ({kind}, "
            f"{len(response.content)} bytes)"
        ) from exc


def error_from_response(response: Response) -> APIError:
    """The typed error for a non-2xx answer: the JSON ``error`` when there is one.

    Its ``request_id`` is the server's ``X-Request-Id`` echo, else the id the request carried.
    """
    message = error_type = code = None
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = error.get("message") if isinstance(error.get("message"), str) else None
        error_type = error.get("type") if isinstance(error.get("type"), str) else None
        raw_code = error.get("code")
        code = str(raw_code) if isinstance(raw_code, (str, int)) else None
    elif isinstance(error, str):
        message = error
    if not message:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        what = "an empty answer" if not response.content else f"a {kind} answer"
        message = f"HTTP {response.status} with {what} (a proxy or gateway error?)"
    if response.status == 404 and (not isinstance(error, dict) or not _versioned(response.url)):
        message = f"{message} {_base_url_hint(response.url)}"
    request_id = header(response.headers, "X-Request-Id") or response.request_id
    error = error_for_status(
        response.status, message, error_type, code=code, request_id=request_id or None
    )
    if isinstance(error, RateLimitError):
        error.retry_after = parse_retry_after(response.headers)
    return error


_VERSION = re.compile(r"/v\d+(?:/|$)")


def _versioned(url: str) -> bool:
    """Whether a URL's path has an API version segment (``/v1/``)."""
    return _VERSION.search(urlsplit(url).path) is not None


def _base_url_hint(url: str) -> str:
    """What a 404 that is not the API's own says about ``base_url``."""
    where = redact(url) if url else "the server"
    if url and not _versioned(url):
        return (
            f"(from {where}: the API's routes are under /v1 — does base_url end in /v1, "
            "as in https://api.chuizi.ai/v1?)"
        )
    return f"(from {where}: not the chuizi API's answer — is base_url the API's?)"


def request_id_note(exc: BaseException) -> str:
    """`` [request id req_...]`` for a log line about an error that has one, else ``""``."""
    request_id = getattr(exc, "request_id", None)
    return f" [request id {request_id}]" if request_id else ""
