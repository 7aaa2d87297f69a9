"""``chuizi models``: the live list of ``GET /v1/models`` with a key, else the catalogue."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .. import MODELS, ChuiziError, RemoteModel
from .._cost import price_estimate  # reads a /v1/models pricing entry: not public API
from ._connect import open_client
from ._output import err, format_money, library_logging, out
from ._results import error_info

__all__ = ["cmd_models"]


def _has_key(args: argparse.Namespace) -> bool:
    key = args.api_key if args.api_key is not None else os.environ.get("CHUIZI_API_KEY", "")
    return bool(key.strip())


def cmd_models(args: argparse.Namespace) -> int:
    """The live list of ``GET /v1/models`` with a key (or ``--simulate``), else the built-in
    catalogue; the first line says which."""
    if args.builtin or not (args.simulate or _has_key(args)):
        return _builtin_models(
            args, "built-in catalogue" if args.builtin else "built-in catalogue (no key)"
        )
    with library_logging(args.verbose, None):
        return asyncio.run(_live_models(args))


async def _live_models(args: argparse.Namespace) -> int:
    async with open_client(args, simulate=args.simulate) as (client, _):
        source = f"live from {client.base_url}/models"
        try:
            models = await client.list_models()
        except ChuiziError as exc:
            info = error_info(exc)
            err(
                f"chuizi models: cannot read {source.removeprefix('live from ')}: "
                f"{info['message']} ({info['type']}); `chuizi models --builtin` shows the "
                "built-in catalogue"
            )
            return 1
    if args.json:
        out(json.dumps([_remote_json(model) for model in models]))
        return 0
    out(f"{len(models)} models, {source}")
    rows = [
        (
            model.id,
            model.owned_by or "",
            ", ".join(model.aliases),
            _price(model.pricing),
            f"{known.max_duration} s" if (known := MODELS.get(model.id)) is not None else "",
        )
        for model in models
    ]
    _table(("id", "owned by", "aliases", "price", "max duration"), rows)
    return 0


def _remote_json(model: RemoteModel) -> dict[str, Any]:
    return {
        "id": model.id,
        "owned_by": model.owned_by,
        "aliases": list(model.aliases),
        "pricing": dict(model.pricing),
        "created": model.created,
    }


def _price(pricing: Mapping[str, Any]) -> str:
    """``$0.10/s``, ``$0.50/clip``, else the pricing's own fields as they are."""
    per_second = price_estimate(pricing, 1)
    per_clip = price_estimate(pricing, None)
    if per_clip is not None:
        return f"{format_money(per_clip)}/clip"
    if per_second is not None:
        return f"{format_money(per_second)}/s"
    return " ".join(f"{k}={v}" for k, v in pricing.items())


def _builtin_models(args: argparse.Namespace, source: str) -> int:
    rows = [
        {
            "id": info.id,
            "provider": info.provider,
            "kind": info.kind,
            "max_duration": info.max_duration,
            "notes": info.notes,
        }
        for info in MODELS.values()
    ]
    if args.json:
        out(json.dumps(rows))
        return 0
    out(f"{len(rows)} models, {source}: the models the library checks before sending")
    _table(
        ("id", "provider", "kind", "max duration", "notes"),
        [
            (info.id, info.provider, info.kind, f"{info.max_duration} s", info.notes)
            for info in MODELS.values()
        ],
    )
    return 0


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is installed with the cli extra
        widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
        for row in (columns, *rows):
            out("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip())
        return
    table = Table()
    for index, column in enumerate(columns):
        table.add_column(
            column,
            no_wrap=index < len(columns) - 1,
            style="bold" if index == 0 else None,
            justify="right" if column in ("price", "max duration") else "left",
        )
    for row in rows:
        table.add_row(*row)
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)
    console.print(table)
