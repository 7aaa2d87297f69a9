"""``chuizi demo``: a two-dozen clip batch on the built-in simulator, no key, no network."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from .. import MODELS
from .._report import read_results
from ._batch import run_in_client
from ._batch_run import BatchOptions
from ._input import InputLine, parse_line
from ._output import UsageError, err, library_logging, rich_console
from ._progress import make_display

__all__ = ["cmd_demo"]

_DEMO_PROMPTS = (
    "a cat watching rain from a windowsill",
    "a lighthouse in a storm at night",
    "a paper boat drifting down a river",
    "a fox crossing fresh snow",
    "a city waking up at dawn, time-lapse",
    "a hummingbird at a red flower, slow motion",
    "waves rolling onto a black sand beach",
    "a forbidden ritual in a candle-lit cave",
    "a hot air balloon over autumn hills",
    "a chef plating a dessert, close-up",
    "a train crossing a viaduct in the mist",
    "a door opening onto the sea",
)


def _demo_lines() -> list[InputLine]:
    lines = []
    for number, (model, info) in enumerate(
        (pair for pair in MODELS.items() for _ in range(2)), start=1
    ):
        request: dict[str, Any] = {
            "model": model,
            "prompt": _DEMO_PROMPTS[(number - 1) % len(_DEMO_PROMPTS)],
            "duration": min(5, info.max_duration),
            "key": f"demo-{number:02d}",
        }
        if info.needs_image:
            request["image"] = "https://example.com/first-frame.png"
        if info.needs_reference_images:
            request["reference_images"] = ["https://example.com/reference.png"]
        if info.needs_video:
            request["video"] = "https://example.com/source.mp4"
        lines.append(parse_line(json.dumps(request), number, model=None, duration=None))
    return lines


def _demo_as_designed(output: Path) -> bool:
    """Whether the demo went as designed: every clip completed but the prompts that fail on
    purpose, which failed with the content-policy error."""
    records = read_results(output)
    on_purpose = [r for r in records if "forbidden" in str(r.get("prompt"))]
    others = [r for r in records if r not in on_purpose]
    return (
        len(records) == len(_demo_lines())
        and all(r.get("status") == "failed" for r in on_purpose)
        and all(r.get("status") == "completed" for r in others)
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """The batch's exit status, except that the failures on purpose are expected: 0 when
    exactly they failed. The results and the report are kept (a fresh folder, or ``-o``)."""
    args.simulate, args.poll_interval, args.api_key, args.base_url = True, None, None, None
    if args.output is not None and not args.output.parent.is_dir():
        raise UsageError(f"the folder of --output {str(args.output)!r} does not exist")
    console = rich_console()
    display = make_display(console)
    with tempfile.TemporaryDirectory(prefix="chuizi-demo-journal-") as scratch:
        if args.output is not None:  # a new simulator each run: no journal to resume from
            options = BatchOptions(output=args.output, journal=Path(scratch) / "journal.sqlite")
        else:  # kept: the summary prints the paths of the results and the report
            folder = Path(tempfile.mkdtemp(prefix="chuizi-demo-"))
            output = folder / "results.jsonl"
            options = BatchOptions(output=output, journal=folder / "results.jsonl.journal")
        with library_logging(args.verbose, console):
            status = asyncio.run(run_in_client(args, _demo_lines(), options, display, True))
    if status == 0 or status != 1 or not _demo_as_designed(options.output):
        return status
    on_purpose = sum("forbidden" in (line.prompt or "") for line in _demo_lines())
    err(
        f"chuizi demo: as designed: every clip completed but the {on_purpose} that fail on "
        "purpose (content policy, as the real API would)"
    )
    return 0
