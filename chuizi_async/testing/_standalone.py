"""The simulator as a standalone server: ``python -m chuizi_async.testing`` / ``chuizi simulate``.

Like stripe-mock: start it, point any client (curl, another language, our examples) at the URL
it prints, with the key it prints. The knobs of ``FakeChuizi`` are options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

from .._argtypes import money, positive_float
from ._faults import FAULT_KINDS, Faults
from ._ratelimit import RateLimit
from ._server import DEFAULT_FAIL_PATTERN, FakeChuizi

__all__ = ["add_arguments", "build_parser", "main", "run", "server_from_args"]

DEFAULT_PORT = 8787


def _faults(text: str) -> dict[str, float]:
    """``rate_limited=0.05,server_error=0.01``: probabilities per fault kind."""
    faults: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in FAULT_KINDS:
            raise argparse.ArgumentTypeError(
                f"unknown fault {name!r}; known: {', '.join(FAULT_KINDS)}"
            )
        try:
            probability = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: not a probability: {value!r}") from None
        if not 0.0 <= probability <= 1.0:
            raise argparse.ArgumentTypeError(f"{name}: a probability is in [0, 1], not {value}")
        faults[name] = probability
    return faults


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's options (shared by ``chuizi simulate``)."""
    where = parser.add_argument_group("where")
    where.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"API port (default {DEFAULT_PORT}; 0: any)"
    )
    where.add_argument("--media-port", type=int, default=0, help="media host port (default: any)")
    where.add_argument("--api-key", metavar="KEY", help="the key to accept (default: a new one)")
    where.add_argument("--json", action="store_true", help="print the addresses as one JSON line")
    time = parser.add_argument_group("time and outcomes")
    time.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        help="time compression: a 60 s generation takes 60/SPEED s (default 1, real time)",
    )
    time.add_argument("--seed", type=int, help="random seed (reproducible runs)")
    time.add_argument(
        "--fail-pattern",
        default=DEFAULT_FAIL_PATTERN,
        metavar="REGEX",
        help="prompts matching it fail with a content-policy error (default: %(default)s; "
        "'' for none)",
    )
    time.add_argument("--failure-rate", type=float, default=0.0, help="share of upstream failures")
    time.add_argument("--balance", type=money, help="the key's balance in USD (default: unlimited)")
    shape = parser.add_argument_group("which answers (the provider's pages allow each)")
    shape.add_argument(
        "--realism",
        choices=("kind", "harsh"),
        default="kind",
        help="harsh: every unkind answer the pages allow (the reference's routes, wrapped "
        "answers, no cost in the status, 404s for fresh ids, Idempotency-Key ignored...)",
    )
    shape.add_argument(
        "--dialect",
        choices=("guide", "reference"),
        default="guide",
        help="the guide's status route and words, or the API reference's",
    )
    shape.add_argument("--wrap-data", action="store_true", help='wrap answers in {"data": ...}')
    shape.add_argument("--ignore-idempotency", action="store_true", help="ignore Idempotency-Key")
    limits = parser.add_argument_group("rate limits and faults")
    limits.add_argument(
        "--rate-limit", type=int, metavar="N", help="N requests per window per key (default: none)"
    )
    limits.add_argument("--window", type=positive_float, default=60.0, help="window, real seconds")
    limits.add_argument("--per-model", type=int, metavar="N", help="N submissions a window a model")
    limits.add_argument(
        "--faults",
        type=_faults,
        default={},
        metavar="KIND=P,...",
        help=f"fault probabilities per request; kinds: {', '.join(FAULT_KINDS)}",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chuizi_async.testing",
        description="Run the chuizi.ai API simulator on 127.0.0.1 until Ctrl-C.",
    )
    add_arguments(parser)
    return parser


def server_from_args(args: argparse.Namespace) -> FakeChuizi:
    """The ``FakeChuizi`` the options describe (not started)."""
    options: dict[str, Any] = {
        "api_key": args.api_key,
        "realism": args.realism,
        "speed": args.speed,
        "seed": args.seed,
        "fail_pattern": args.fail_pattern or None,
        "failure_rate": args.failure_rate,
        "balance": args.balance,
    }
    # given only when asked for: under --realism harsh, a default means "the preset's value"
    if args.dialect != "guide":
        options["dialect"] = args.dialect
    if args.wrap_data:
        options["wrap_data"] = True
    if args.ignore_idempotency:
        options["honour_idempotency"] = False
    if args.rate_limit is not None:
        options["rate_limit"] = RateLimit(
            limit=args.rate_limit, window=args.window, per_model=args.per_model
        )
    if args.faults:
        options["faults"] = Faults(**args.faults)
    return FakeChuizi(**options)


async def serve(server: FakeChuizi, args: argparse.Namespace) -> None:
    """Start, print where, and serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    await server.start(port=args.port, media_port=args.media_port)
    try:
        _announce(server, as_json=args.json)
        await stop.wait()
    finally:
        await server.aclose()


def _announce(server: FakeChuizi, *, as_json: bool) -> None:
    if as_json:
        hello = {
            "base_url": server.base_url,
            "api_key": server.api_key,
            "media_base_url": server.media_base_url,
        }
        sys.stdout.write(json.dumps(hello) + "\n")
    else:
        sys.stdout.write(
            "chuizi simulator: serving until Ctrl-C\n"
            f"  base URL  {server.base_url}\n"
            f"  API key   {server.api_key}\n"
            f"  media     {server.media_base_url}\n"
            f"  export CHUIZI_BASE_URL={server.base_url} CHUIZI_API_KEY={server.api_key}\n"
        )
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m chuizi_async.testing``: the exit status."""
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Serve what the parsed options describe; the exit status."""
    try:
        server = server_from_args(args)
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    try:
        asyncio.run(serve(server, args))
    except OSError as exc:
        sys.stderr.write(f"error: cannot listen on port {args.port}: {exc.strerror}\n")
        return 1
    return 0
