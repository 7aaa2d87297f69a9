"""A batch's results as one self-contained HTML page: a summary and a card per input line.

No server, no CDN, no script: the page is one file that works offline from its folder. Each
card plays its clip in a ``<video>`` element — the downloaded file when there is one, else its
URL (http(s) only) — with the prompt, model, status, cost and error. Failures are listed at
the top with links to their cards, and a filter (pure CSS) shows only them.

Everything a user or the server wrote (prompts, errors, URLs, paths) is data: escaped, and
checked before a link or a path is made of it.
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ._parsing import is_web_url

__all__ = [
    "STATUS_ORDER",
    "format_money",
    "read_results",
    "render_report",
    "write_atomically",
    "write_report",
]

STATUS_ORDER = ("completed", "failed", "uncertain", "invalid", "not_submitted", "pending")
_BAD = frozenset({"failed", "uncertain", "invalid"})


def format_money(amount: Decimal) -> str:
    """Dollars for people: ``$11.20``, and as many decimals as a sub-cent amount needs."""
    cents = amount.quantize(Decimal("0.01"))
    if cents == amount or abs(amount) >= 1:
        return f"${cents:,.2f}"
    return f"${amount.normalize():f}"


def read_results(path: Path) -> list[dict[str, Any]]:
    """The records of a results file (JSONL); a line that is not a JSON object is skipped."""
    records = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if isinstance(value, str) and value else None


def _cost(record: Mapping[str, Any]) -> Decimal | None:
    raw = record.get("cost")
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _video_source(record: Mapping[str, Any], folder: Path) -> str | None:
    """The downloaded file (relative to the page's folder) if it is there, else an http(s) URL."""
    file = _text(record, "file")
    if file is not None:
        path = Path(file)
        if not path.is_absolute():
            path = Path.cwd() / path
        if path.is_file():
            relative = os.path.relpath(path, folder)
            return quote(Path(relative).as_posix())  # a relative URL, never a scheme
    url = _text(record, "video_url")
    return url if url is not None and is_web_url(url) else None


def _card(record: Mapping[str, Any], folder: Path) -> str:
    status = _text(record, "status") or "unknown"
    line = record.get("line")
    anchor = f"line-{line}" if isinstance(line, int) else None
    e = html.escape
    parts = [
        f'<article class="card {"bad" if status in _BAD else "ok"} s-{e(status)}"'
        + (f' id="{anchor}"' if anchor else "")
        + ">"
    ]
    source = _video_source(record, folder)
    if source is not None:
        parts.append(
            f'<video controls muted loop playsinline preload="metadata" src="{e(source)}"></video>'
        )
    else:
        parts.append('<div class="novideo">no video</div>')
    head = f"line {line}" if isinstance(line, int) else "line ?"
    parts.append(f'<h2><span class="status">{e(status)}</span> {e(head)}</h2>')
    parts.append(f'<p class="prompt">{e(_text(record, "prompt") or "")}</p>')
    rows = [
        ("model", _text(record, "model")),
        ("key", _text(record, "key")),
        ("id", _text(record, "id")),
    ]
    cost = _cost(record)
    rows.append(("cost", format_money(cost) if cost is not None else None))
    parts.append("<dl>")
    for name, value in rows:
        if value is not None:
            parts.append(f"<dt>{name}</dt><dd>{e(value)}</dd>")
    parts.append("</dl>")
    error = record.get("error")
    if isinstance(error, Mapping):
        message = error.get("message")
        kind = error.get("type")
        parts.append(
            '<p class="error">'
            + (f"<b>{e(str(kind))}</b> " if kind else "")
            + e(str(message) if message is not None else "")
            + "</p>"
        )
    parts.append("</article>")
    return "".join(parts)


def render_report(
    records: Sequence[Mapping[str, Any]],
    *,
    folder: Path,
    title: str = "chuizi batch",
    elapsed: float | None = None,
) -> str:
    """The page for ``records``; ``folder`` is where it will be saved (for relative paths)."""
    e = html.escape
    counts = Counter(_text(r, "status") or "unknown" for r in records)
    total = sum((c for r in records if (c := _cost(r)) is not None), Decimal(0))
    summary = [f"<li><b>{len(records)}</b> lines</li>"]
    for status in (*STATUS_ORDER, *sorted(set(counts) - set(STATUS_ORDER))):
        if counts[status]:
            summary.append(f'<li class="s-{e(status)}"><b>{counts[status]}</b> {e(status)}</li>')
    summary.append(f"<li><b>{format_money(total)}</b> total cost</li>")
    if elapsed is not None:
        summary.append(f"<li><b>{elapsed:.1f} s</b> elapsed</li>")
    bad = [r for r in records if (_text(r, "status") or "") in _BAD]
    failures = ""
    if bad:
        links = "".join(
            f'<li><a href="#line-{r["line"]}">line {r["line"]}</a>: {e(_text(r, "status") or "")}'
            f" — {e(_error_message(r))}</li>"
            for r in bad
            if isinstance(r.get("line"), int)
        )
        failures = (
            f'<section class="failures"><h2>{len(bad)} to look at</h2><ul>{links}</ul></section>'
        )
    cards = "\n".join(_card(r, folder) for r in records)
    return _PAGE.format(
        title=e(title),
        summary="".join(summary),
        failures=failures,
        cards=cards,
    )


def _error_message(record: Mapping[str, Any]) -> str:
    error = record.get("error")
    if isinstance(error, Mapping) and error.get("message") is not None:
        return str(error["message"])[:160]
    return ""


def write_report(
    records: Iterable[Mapping[str, Any]],
    output: Path,
    *,
    title: str = "chuizi batch",
    elapsed: float | None = None,
) -> Path:
    """Write the page to ``output`` (through a temporary file and a rename); its path."""
    folder = output.resolve().parent
    write_atomically(
        output, render_report(list(records), folder=folder, title=title, elapsed=elapsed)
    )
    return output


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` (fsynced), then rename it over
    ``path``: a reader, or a crash, never sees half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f;
  background: #f6f6f7; }}
h1 {{ font-size: 1.4rem; margin: 0 0 .75rem; }}
.summary {{ display: flex; flex-wrap: wrap; gap: .5rem 1.25rem; list-style: none; padding: 0; }}
.summary b {{ font-size: 1.1rem; }}
.failures {{ background: #fff1f0; border: 1px solid #f3b7b3; border-radius: 8px;
  padding: .5rem 1rem; margin: 1rem 0; }}
.failures h2 {{ font-size: 1rem; margin: .25rem 0; color: #a4161a; }}
label {{ margin-right: 1rem; cursor: pointer; }}
#only-bad:checked ~ .cards .card.ok {{ display: none; }}
.cards {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 1rem; }}
.card {{ background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: .75rem;
  overflow-wrap: anywhere; }}
.card.bad {{ border: 2px solid #d1242f; background: #fffafa; }}
.card video, .card .novideo {{ width: 100%; aspect-ratio: 16 / 9; background: #111;
  border-radius: 4px; }}
.card .novideo {{ display: flex; align-items: center; justify-content: center; color: #999; }}
.card h2 {{ font-size: .95rem; margin: .5rem 0 .25rem; }}
.status {{ display: inline-block; padding: 0 .4rem; border-radius: 4px; background: #e8f5e9;
  color: #1b5e20; }}
.card.bad .status {{ background: #d1242f; color: #fff; }}
.s-not_submitted .status, .s-pending .status {{ background: #eee; color: #555; }}
.prompt {{ margin: .25rem 0; }}
dl {{ display: grid; grid-template-columns: auto 1fr; gap: 0 .5rem; margin: .25rem 0;
  color: #555; font-size: .85rem; }}
dt {{ font-weight: 600; }}
dd {{ margin: 0; }}
.error {{ color: #a4161a; margin: .25rem 0; }}
</style>
</head>
<body>
<h1>{title}</h1>
<ul class="summary">{summary}</ul>
{failures}
<input type="radio" name="show" id="show-all" checked>
<label for="show-all">all lines</label>
<input type="radio" name="show" id="only-bad">
<label for="only-bad">only failures</label>
<div class="cards">
{cards}
</div>
</body>
</html>
"""
