"""``chuizi generate``, ``chuizi status``, ``chuizi models`` and ``chuizi balance``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import MODELS, ChuiziError, Generation, InvalidRequest, KeyInfo, RemoteModel, Video
from ._cli_batch import error_info
from ._cli_common import UsageError, check_key, err, library_logging, open_client, out, rich_console
from ._cost import price_estimate
from ._report import format_money

__all__ = ["cmd_balance", "cmd_generate", "cmd_models", "cmd_status"]


# -- generate --------------------------------------------------------------------------------


def _video_json(video: Video, file: Path | None) -> dict[str, Any]:
    return {
        "id": video.id,
        "status": "completed",
        "url": video.url,
        "model": video.model,
        "cost": str(video.cost) if video.cost is not None else None,
        "duration_seconds": video.duration_seconds,
        "file": str(file) if file is not None else None,
        "error": None,
    }


def cmd_generate(args: argparse.Namespace) -> int:
    check_key(args)
    if args.output is not None and not args.output.parent.is_dir():
        raise UsageError(f"the folder of --output {str(args.output)!r} does not exist")
    console = rich_console(stderr=True)
    submitted: list[Generation] = []
    try:
        with library_logging(args.verbose, console):
            return asyncio.run(_generate(args, submitted))
    except KeyboardInterrupt:
        if submitted and submitted[0].id is not None:
            gen_id = submitted[0].id
            err(f"chuizi: interrupted; {gen_id} goes on on the server: chuizi status {gen_id}")
            return 130
        raise


async def _generate(args: argparse.Namespace, submitted: list[Generation]) -> int:
    async with open_client(args, simulate=args.simulate) as (client, _):
        try:
            handle = await client.submit(
                args.model, args.prompt, duration=args.duration, image=args.image
            )
        except InvalidRequest as exc:
            raise UsageError(str(exc)) from None
        except ChuiziError as exc:
            return _generate_failed(args, None, exc)
        submitted.append(handle)
        try:
            video = await handle
        except ChuiziError as exc:
            return _generate_failed(args, handle.id, exc)
        file = None
        if args.output is not None:
            try:
                file = await client.download(video, args.output, overwrite=True)
            except (ChuiziError, OSError) as exc:
                err(f"chuizi generate: {video.url} is ready, but the download failed: {exc}")
                if args.json:
                    out(json.dumps({**_video_json(video, None), "error": error_info(exc)}))
                return 1
        out(json.dumps(_video_json(video, file)) if args.json else video.url)
        return 0


def _generate_failed(args: argparse.Namespace, gen_id: str | None, exc: BaseException) -> int:
    info = error_info(exc)
    if args.json:
        out(json.dumps({"id": gen_id, "status": "failed", "error": info}))
    where = f"{gen_id}: " if gen_id else ""
    err(f"chuizi generate: {where}{info['message']} ({info['type']})")
    return 1


# -- status ----------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    check_key(args)
    with library_logging(args.verbose, None):
        return asyncio.run(_status(args))


async def _status(args: argparse.Namespace) -> int:
    failures = 0
    async with open_client(args, simulate=False) as (client, _):
        for gen_id in args.ids:
            entry: dict[str, Any] = {"id": gen_id}
            try:
                status = await client.retrieve(gen_id)
            except ChuiziError as exc:
                failures += 1
                entry.update(status="error", state=None, error=error_info(exc))
            else:
                video = status.video
                error = status.error
                entry.update(
                    status=status.status,
                    state=status.state,
                    video_url=video.url if video else None,
                    cost=str(video.cost) if video and video.cost is not None else None,
                    error={"message": error.message, "type": error.type} if error else None,
                )
                failures += status.state == "failed"
            out(json.dumps(entry) if args.json else _status_line(entry))
    return 1 if failures else 0


def _status_line(entry: dict[str, Any]) -> str:
    parts = [entry["id"], entry["status"]]
    if entry.get("video_url"):
        parts.append(entry["video_url"])
    if entry.get("cost") is not None:
        parts.append(format_money(Decimal(entry["cost"])))
    error = entry.get("error")
    if error:
        parts.append(error["message"] + (f" ({error['type']})" if error.get("type") else ""))
    return "  ".join(parts)


# -- models ----------------------------------------------------------------------------------


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


# -- balance ---------------------------------------------------------------------------------


def cmd_balance(args: argparse.Namespace) -> int:
    """The key's balance and limits (``GET /v1/key/info``)."""
    check_key(args)
    with library_logging(args.verbose, None):
        return asyncio.run(_balance(args))


async def _balance(args: argparse.Namespace) -> int:
    async with open_client(args, simulate=args.simulate) as (client, _):
        try:
            info = await client.key_info()
        except ChuiziError as exc:
            details = error_info(exc)
            err(f"chuizi balance: {details['message']} ({details['type']})")
            return 1
    if args.json:
        out(json.dumps(_key_json(info)))
        return 0
    for name, value in _key_rows(info):
        out(f"{name + ':':<17}{value}")
    return 0


def _key_json(info: KeyInfo) -> dict[str, Any]:
    return {
        "balance": str(info.balance) if info.balance is not None else None,
        "currency": info.currency,
        "rpm_limit": info.rpm_limit,
        "daily_limit": str(info.daily_limit) if info.daily_limit is not None else None,
        "daily_requests": info.daily_requests,
        "allowed_models": list(info.allowed_models) if info.allowed_models is not None else None,
    }


def _key_rows(info: KeyInfo) -> list[tuple[str, str]]:
    def money(amount: Decimal | None) -> str:
        if amount is None:
            return "not given"
        return format_money(amount) + (f" {info.currency}" if info.currency else "")

    models = info.allowed_models
    return [
        ("balance", money(info.balance)),
        ("rate limit", f"{info.rpm_limit} requests/min" if info.rpm_limit else "the account's"),
        ("daily limit", money(info.daily_limit) if info.daily_limit is not None else "none"),
        ("daily requests", str(info.daily_requests) if info.daily_requests else "no limit given"),
        ("allowed models", ", ".join(models) if models else "all"),
    ]
