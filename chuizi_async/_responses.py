"""Turning an answer into JSON or into the typed error it stands for."""

from __future__ import annotations

import json

from ._exceptions import APIError, RateLimitError, ResponseFormatError, error_for_status
from ._retries import parse_retry_after
from ._transport import Response

__all__ = ["decode_json", "error_from_response"]


def decode_json(response: Response) -> object:
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError) as exc:
        kind = response.headers.get("Content-Type", "unknown type")
        raise ResponseFormatError(
            f"HTTP {response.status}: the answer is not valid JSON ({kind}, "
            f"{len(response.content)} bytes)"
        ) from exc


def error_from_response(response: Response) -> APIError:
    """The typed error for a non-2xx answer: the JSON ``error`` when there is one."""
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
    error = error_for_status(response.status, message, error_type, code=code)
    if isinstance(error, RateLimitError):
        error.retry_after = parse_retry_after(response.headers)
    return error
