"""The input of ``chuizi batch``: JSONL requests (or plain prompts), read and checked whole.

A line that cannot be right (bad JSON, a field of the wrong type, what the catalogue refuses)
becomes an ``invalid`` :class:`InputLine` and never reaches the client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .. import GenerationRequest, InvalidRequest
from .._validation import validate  # the catalogue check, without a client: not public API
from ._output import UsageError

__all__ = ["InputLine", "parse_line", "read_input"]

_FIELDS = frozenset(attrs.fields_dict(GenerationRequest))
# the fields whose JSON type is checked on its own in _type_error; every other is a string
_TYPED_FIELDS = frozenset({"duration", "reference_images", "watermark", "extra_body"})
_TEXT_FIELDS = tuple(
    field.name for field in attrs.fields(GenerationRequest) if field.name not in _TYPED_FIELDS
)


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
