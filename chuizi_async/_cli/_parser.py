"""The ``chuizi`` argument parser: every command, its options and help; each sets ``run``."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import attrs

from .. import GenerationRequest, __version__
from .._argtypes import money, positive_float, positive_int
from ._balance import cmd_balance
from ._batch import cmd_batch
from ._demo import cmd_demo
from ._generate import cmd_generate
from ._models import cmd_models
from ._report import cmd_report
from ._simulate import cmd_simulate
from ._status import cmd_status

__all__ = ["build_parser"]

_DEFAULT_SPEED = 60.0
_DEMO_SPEED = 30.0

_BATCH_HELP = """\
Generate every request of INPUT and write one result line per input line to --output.

INPUT is JSONL, one request a line:
  {"model": "google/veo-3.1-fast", "prompt": "a cat watching rain", "duration": 5,
   "key": "cat-1", "image": "first-frame.png", "aspect_ratio": "16:9"}
<known fields>
With --model, a line that is not a JSON object is a prompt (plain text, one a line);
--model and --duration are also the defaults of JSON lines that give none.

RESULTS gets one JSON line per input line, blank lines included, in input order (row n
is line n of INPUT): line (the 1-based input line number), key (the line's "key", else
the key the journal derives from the request's content; null for a blank line and an
invalid line without one), model, prompt, status, id, video_url, cost (a decimal
string, full precision), file (with --download-dir) and error ({"message", "type"} and,
for an error answer, the "request_id" to quote to support; or null). The error types
are listed in the README (the server's error.type where it gave one, else e.g.
connection_error, timeout, not_submitted, max_cost). status is one of:
  completed      the video is ready (a failed download is reported in error; the
                 status stays completed)
  failed         the server failed or refused it (content policy, 403, unknown model)
  invalid        refused before sending (bad JSON, wrong field type, a duration over
                 the model's maximum, a missing image...) or by the server as malformed
                 (400, 422): never billed
  not_submitted  never sent: Ctrl-C or SIGTERM, --max-cost reached, the balance ran
                 out (402), the daily cap (403), or the server could not be reached
  uncertain      (--retry-submissions safe) sent, but no answer came back: it may or
                 may not have created a billed generation; error names its
                 Idempotency-Key. Not sent again unless --resend-uncertain
  blank          an empty input line: nothing sent, not counted as a clip
A results file written before the end (a second Ctrl-C or SIGTERM, a fatal error) says
pending for the lines still in flight, with their id and key.

Every state change is recorded in the journal (default RESULTS.journal): run the same
command again to resume without paying twice; on a finished batch it sends and
downloads nothing and writes the same results. A request the server refused for good
(400, 422, 404 for the model) is not sent again; a 402 or 403 is.

If the server cannot be reached (connection refused, DNS, TLS, no answer in time), the batch
stops after the first request's retries: the rest are not_submitted, one line says why.

Ctrl-C or SIGTERM once: no new submissions, the results written, the clips already
accepted followed to the end and the results written again. Twice: quit at once (exit
130 for Ctrl-C, 143 for SIGTERM); the journal keeps everything.

Exit status: 0 all completed (and downloaded; blank lines aside), 1 otherwise, 2 usage
error.
"""
_KNOWN_FIELDS = [f.name for f in attrs.fields(GenerationRequest) if f.name != "extra_body"]
_BATCH_HELP = _BATCH_HELP.replace(
    "<known fields>",
    textwrap.fill(
        f"Known fields: {', '.join([*_KNOWN_FIELDS, 'extra_body'])}; any other field is sent "
        "as is in the request body.",
        width=88,
    ),
)


def _connection_options(
    parser: argparse.ArgumentParser, *, simulate: bool = True, polling: bool = True
) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="the API key (default: $CHUIZI_API_KEY; prefer the variable, a command line "
        "is visible to other local users)",
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="the API's base URL (default: $CHUIZI_BASE_URL or https://api.chuizi.ai/v1)",
    )
    if simulate:
        group.add_argument(
            "--simulate",
            action="store_true",
            help="run on the built-in simulator (in-process, no key, no network); prompts "
            "containing 'forbidden' fail with a content-policy error",
        )
        parser.set_defaults(speed=_DEFAULT_SPEED)
    if simulate and polling:
        group.add_argument(
            "--speed",
            type=positive_float,
            default=_DEFAULT_SPEED,
            metavar="X",
            help=f"with --simulate: time compression (default {_DEFAULT_SPEED:g})",
        )
        group.add_argument(
            "--poll-interval",
            type=positive_float,
            metavar="S",
            help="check each generation every S seconds, the first check after S (default: "
            "the library's policy: the model's typical time, then every 10 s)",
        )
    group.add_argument(
        "-v", "--verbose", action="store_true", help="log every request (never the key)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chuizi",
        description="Generate videos with the chuizi.ai API: batches from a file, resumable.",
        epilog="Try `chuizi demo`: a batch on the built-in simulator, no key needed.",
    )
    parser.add_argument("--version", action="version", version=f"chuizi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    batch = commands.add_parser(
        "batch",
        help="generate every request of a JSONL file, resumable",
        description=_BATCH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("input", type=Path, metavar="INPUT", help="JSONL requests (or prompts)")
    batch.add_argument(
        "-o", "--output", type=Path, required=True, metavar="RESULTS", help="results (JSONL)"
    )
    batch.add_argument(
        "--journal", type=Path, metavar="PATH", help="the journal (default: RESULTS.journal)"
    )
    batch.add_argument(
        "--download-dir",
        type=Path,
        metavar="DIR",
        help="download each completed video to DIR/<id>.mp4 (4 at a time)",
    )
    batch.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help="at most N generations in flight (default: as many as the rate limit allows)",
    )
    batch.add_argument("--model", metavar="M", help="the model of lines that name none")
    batch.add_argument(
        "--duration", type=positive_int, metavar="D", help="seconds, for lines that give none"
    )
    batch.add_argument(
        "--max-cost",
        type=money,
        metavar="USD",
        help="submit nothing more once the cost spent plus the estimate of what is in flight "
        "would pass USD",
    )
    batch.add_argument(
        "--retry-submissions",
        choices=("idempotent", "safe"),
        default="idempotent",
        help="idempotent (default): resend a submission after any transient failure, with "
        "the same Idempotency-Key (a server that ignores it may bill twice); safe: only "
        "when nothing can have been created, else report it uncertain",
    )
    batch.add_argument(
        "--resend-uncertain",
        action="store_true",
        help="send again, with the same Idempotency-Key, the requests an earlier run "
        "reported uncertain (check the account's usage first)",
    )
    _connection_options(batch)
    batch.set_defaults(run=cmd_batch)

    generate = commands.add_parser(
        "generate",
        help="generate one video and print its URL",
        description="Generate one video; print its URL (or its JSON). Exit 1 if it fails, "
        "2 if the request cannot be right.",
    )
    generate.add_argument("prompt", metavar="PROMPT")
    generate.add_argument("-m", "--model", required=True, metavar="M")
    generate.add_argument("-d", "--duration", type=positive_int, metavar="D")
    generate.add_argument("--image", metavar="PATH_OR_URL", help="source image (image-to-video)")
    generate.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="download the video to FILE"
    )
    generate.add_argument("--json", action="store_true", help="print the result as JSON")
    _connection_options(generate)
    generate.set_defaults(run=cmd_generate)

    status = commands.add_parser(
        "status",
        help="the status of generations by id",
        description="One line per id: status, then the URL and cost, or the error. Exit 1 if "
        "an id is unknown or failed.",
    )
    status.add_argument("ids", nargs="+", metavar="ID")
    status.add_argument("--json", action="store_true", help="one JSON object a line")
    _connection_options(status, simulate=False)
    status.set_defaults(run=cmd_status)

    models = commands.add_parser(
        "models",
        help="the models: live from the API with a key, else the built-in catalogue",
        description="With a key ($CHUIZI_API_KEY, --api-key) or --simulate: the models this "
        "key may call, live from GET /v1/models, with their prices. Without one (or with "
        "--builtin): the built-in catalogue the library checks requests against before "
        "sending. The first line says which it is. Exit 1 if the live list cannot be read.",
    )
    models.add_argument("--json", action="store_true", help="print a JSON list")
    models.add_argument(
        "--builtin", action="store_true", help="the built-in catalogue, even with a key"
    )
    _connection_options(models, polling=False)
    models.set_defaults(run=cmd_models)

    balance = commands.add_parser(
        "balance",
        aliases=["key"],
        help="the key's balance and limits",
        description="The key's balance, rate limit, daily limits and allowed models, from "
        "GET /v1/key/info. Exit 1 if they cannot be read.",
    )
    balance.add_argument("--json", action="store_true", help="print a JSON object")
    _connection_options(balance, polling=False)
    balance.set_defaults(run=cmd_balance)

    simulate = commands.add_parser(
        "simulate",
        help="run the API simulator as a server (for curl, other languages, your tests)",
        description="Run the chuizi.ai API simulator on 127.0.0.1 until Ctrl-C (the same as "
        "`python -m chuizi_async.testing`): it prints its base URL and the key it accepts.",
    )
    # the options of `python -m chuizi_async.testing`, shared: not public API
    from ..testing._standalone import add_arguments as add_simulator_arguments

    add_simulator_arguments(simulate)
    simulate.set_defaults(run=cmd_simulate)

    report = commands.add_parser(
        "report",
        help="an HTML page of a batch's results, to look at the clips",
        description="Write one self-contained HTML page (no server, no CDN; open it from its "
        "folder, offline) with a summary and one card per line of RESULTS: the clip playing "
        "(the downloaded file when there is one, else its URL), the prompt, model, status, "
        "cost and error. `chuizi batch` writes one beside its results.",
    )
    report.add_argument("results", type=Path, metavar="RESULTS", help="a results file (JSONL)")
    report.add_argument(
        "-o", "--output", type=Path, metavar="HTML", help="the page (default: RESULTS.html)"
    )
    report.set_defaults(run=cmd_report)

    demo = commands.add_parser(
        "demo",
        help="a two-dozen clip batch on the built-in simulator (no key, no network)",
        description="Run a batch of 24 clips across every model on the built-in simulator, "
        "time compressed, with the progress display and a summary. Two prompts fail on "
        "purpose (content policy).",
    )
    demo.add_argument(
        "--speed",
        type=positive_float,
        default=_DEMO_SPEED,
        metavar="X",
        help=f"time compression (default {_DEMO_SPEED:g})",
    )
    demo.add_argument("-o", "--output", type=Path, metavar="RESULTS", help="keep the results")
    demo.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(run=cmd_demo)
    return parser
