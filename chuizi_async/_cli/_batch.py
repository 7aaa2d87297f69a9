"""``chuizi batch``: the command's checks of its arguments, then the run (see ``_batch_run``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from .. import remove_partial_downloads
from ._batch_run import BatchOptions, run_batch
from ._connect import check_key, open_client, simulator_rows
from ._input import InputLine, read_input
from ._output import UsageError, library_logging, rich_console
from ._progress import Display, make_display

__all__ = ["cmd_batch", "run_in_client"]


def cmd_batch(args: argparse.Namespace) -> int:
    output: Path = args.output
    if not output.parent.is_dir():
        raise UsageError(f"the folder of --output {str(output)!r} does not exist")
    if output.is_dir():
        raise UsageError(f"--output {str(output)!r} is a directory; name a file")
    with contextlib.suppress(OSError):
        if args.input.exists() and output.exists() and args.input.samefile(output):
            raise UsageError("--output must not be the INPUT file")
    lines = read_input(args.input, model=args.model, duration=args.duration)
    check_key(args)
    if args.download_dir is not None:
        try:
            args.download_dir.mkdir(parents=True, exist_ok=True)
            remove_partial_downloads(args.download_dir)  # left by a killed run
        except OSError as exc:
            raise UsageError(f"cannot create --download-dir: {exc.strerror}") from None
    options = BatchOptions(
        output=output,
        journal=args.journal or output.with_name(output.name + ".journal"),
        download_dir=args.download_dir,
        concurrency=args.concurrency,
        max_cost=args.max_cost,
        fresh_server=args.simulate,
        resend_uncertain=args.resend_uncertain,
    )
    console = rich_console()
    with library_logging(args.verbose, console):
        return asyncio.run(
            run_in_client(args, lines, options, make_display(console), args.simulate)
        )


async def run_in_client(
    args: argparse.Namespace,
    lines: Sequence[InputLine],
    options: BatchOptions,
    display: Display,
    simulate: bool,
) -> int:
    """Run the batch on a client of the API, or of a fresh simulator with ``simulate``."""
    async with open_client(args, simulate=simulate) as (client, server):
        return await run_batch(client, lines, options, display, summary_rows=simulator_rows(server))
