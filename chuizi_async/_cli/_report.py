"""``chuizi report``: a batch's results as one self-contained HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._report import read_results, write_report
from ._output import UsageError, out
from ._results import report_path

__all__ = ["cmd_report"]


def cmd_report(args: argparse.Namespace) -> int:
    results: Path = args.results
    output: Path = args.output or report_path(results)
    try:
        records = read_results(results)
    except FileNotFoundError:
        raise UsageError(f"results file {str(results)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {str(results)!r}: {exc}") from None
    if not output.parent.is_dir():
        raise UsageError(f"the folder of --output {str(output)!r} does not exist")
    try:
        cards = [r for r in records if r.get("status") != "blank"]  # a card per request
        write_report(cards, output, title=f"chuizi batch: {results.name}")
    except OSError as exc:
        raise UsageError(f"cannot write {str(output)!r}: {exc.strerror}") from None
    out(str(output))
    return 0
