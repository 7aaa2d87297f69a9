"""The batch report: a page a person opens, checked in a real headless Chromium.

The browser test needs Debian's ``chromium`` (``.ci/run`` installs it when missing) and the
``playwright`` package (driving the system browser, no download). Its screenshot is kept in
``tests/screenshots/report.png`` to look at.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chuizi_async._cli import main
from chuizi_async._report import format_money, render_report

SCREENSHOTS = Path(__file__).parent / "screenshots"
_BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    found = os.environ.get("CHUIZI_CHROMIUM") or shutil.which("chromium")
    if found is None:
        pytest.fail(
            "the browser test needs Chromium: `apt-get install chromium` (Debian), or point "
            "CHUIZI_CHROMIUM at a Chromium binary"
        )
    return found


@contextlib.contextmanager
def _browser_page() -> Iterator[Any]:
    """A page of headless Chromium (opened after any asyncio.run: playwright runs a loop)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=_BROWSER_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1100, "height": 900})
        finally:
            browser.close()


def _run_batch(folder: Path) -> Path:
    lines = [
        {"model": "google/veo-3.1-fast", "prompt": "a cat <script>alert(1)</script> in rain"},
        {"model": "google/veo-3.1-fast", "prompt": "a forbidden dance", "key": "bad-one"},
        {"model": "bailian/wan2.6-t2v", "prompt": "a fox crossing fresh snow", "duration": 5},
        {"model": "google/veo-3.1", "prompt": "too long", "duration": 60},
    ]
    source = folder / "in.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    results = folder / "results.jsonl"
    code = main(
        [
            "batch",
            str(source),
            "-o",
            str(results),
            "--simulate",
            "--download-dir",
            str(folder / "v"),
        ]
    )
    assert code == 1  # one failed and one invalid line
    return results


def test_batch_writes_a_report_that_plays_the_clips_in_a_browser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _run_batch(tmp_path)
    report = tmp_path / "results.html"
    captured = capsys.readouterr()
    assert str(report) in captured.out + captured.err  # the summary says where it is
    with _browser_page() as page:
        _look_at(page, report)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert sum(1 for r in records if r["status"] == "completed") == 2


def _look_at(page: Any, report: Path) -> None:
    page.goto(report.as_uri())
    cards = page.locator("article.card")
    assert cards.count() == 4  # one card per input line
    first = page.locator("article.card video").first
    first.evaluate(
        "v => new Promise(ok => v.readyState >= 2 ? ok() : v.addEventListener('loadeddata', ok))"
    )
    assert first.evaluate("v => v.videoWidth") > 0  # the browser decoded the downloaded clip
    assert first.get_attribute("src") is not None
    assert not first.get_attribute("src").startswith(("http", "/"))  # the file, beside the page
    # the prompt is shown as text, not run
    assert page.locator("script").count() == 0
    assert "<script>alert(1)</script>" in cards.first.inner_text()
    # failures are easy to find: listed at the top, and a filter shows only them
    assert page.locator(".failures li").count() == 2
    page.click("label[for=only-bad]")
    visible = [c for c in cards.all() if c.is_visible()]
    assert {c.get_attribute("id") for c in visible} == {"line-2", "line-4"}
    page.click("label[for=show-all]")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
    assert (SCREENSHOTS / "report.png").stat().st_size > 10_000


def test_report_command_writes_the_page_beside_the_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r.jsonl"
    results.write_text(
        json.dumps({"line": 1, "status": "completed", "prompt": "p", "cost": "1.5"}) + "\n"
    )
    assert main(["report", str(results)]) == 0
    page = tmp_path / "r.html"
    assert capsys.readouterr().out.strip() == str(page)
    assert "$1.50" in page.read_text()
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2


def test_report_links_only_web_urls_and_files_that_exist(tmp_path: Path) -> None:
    records = [
        {"line": 1, "status": "completed", "video_url": "javascript:alert(1)"},
        {"line": 2, "status": "completed", "video_url": "https://media.example/v.mp4"},
        {"line": 3, "status": "completed", "file": str(tmp_path / "gone.mp4"), "video_url": None},
        {"line": 4, "status": "failed", "error": {"message": '"><img src=x>', "type": "x"}},
    ]
    page = render_report(records, folder=tmp_path)
    assert "javascript:" not in page
    assert 'src="https://media.example/v.mp4"' in page
    assert "gone.mp4" not in page
    assert "<img" not in page and "&quot;&gt;&lt;img src=x&gt;" in page


@pytest.mark.parametrize(
    ("amount", "shown"),
    [("11.2", "$11.20"), ("0.15000000", "$0.15"), ("1234.5", "$1,234.50"), ("0.0025", "$0.0025")],
)
def test_money_is_shown_to_people_in_dollars_and_cents(amount: str, shown: str) -> None:
    assert format_money(Decimal(amount)) == shown
