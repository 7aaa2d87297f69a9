"""The ``chuizi`` command line: ``batch``, ``generate``, ``status``, ``models``, ``report``...

``main(argv)`` returns the exit status: 0 when everything asked for was done, 1 when some
of it failed, 2 for a usage error, 130 when interrupted (a batch: 128 + the signal's number
after a second Ctrl-C or SIGTERM, so 130 or 143). Expected errors are one line on
stderr, never a traceback. The API key is read from ``CHUIZI_API_KEY`` (or ``--api-key``)
and is never printed, logged or written to any file.

One module per command (``_batch``, ``_generate``, ``_status``...), plus the parser
(``_parser``), the output (``_output``), the progress display (``_progress``) and the
connection to the API (``_connect``). It uses the library through ``chuizi_async``'s public
names, except where a comment says why not.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ._output import UsageError, err
from ._parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except UsageError as exc:
        err(f"chuizi {args.command}: error: {exc}")
        return 2
    except KeyboardInterrupt:
        err("chuizi: interrupted")
        return 130
