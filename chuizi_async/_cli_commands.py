"""``chuizi generate``, ``chuizi status`` and ``chuizi models``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from . import MODELS, ChuiziError, Generation, InvalidRequest, Video
from ._cli_batch import error_info
from ._cli_common import UsageError, check_key, err, library_logging, open_client, out, rich_console

__all__ = ["cmd_generate", "cmd_models", "cmd_status"]


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
        parts.append(f"${entry['cost']}")
    error = entry.get("error")
    if error:
        parts.append(error["message"] + (f" ({error['type']})" if error.get("type") else ""))
    return "  ".join(parts)


# -- models ----------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
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
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is installed with the cli extra
        for row in rows:
            out(f"{row['id']:<36}{row['provider']:<17}{row['kind']:<20}{row['max_duration']}")
        return 0
    table = Table(title="chuizi.ai models")
    table.add_column("id", no_wrap=True, style="bold")
    table.add_column("provider", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("max duration", justify="right")
    table.add_column("notes")
    for info in MODELS.values():
        table.add_row(info.id, info.provider, info.kind, f"{info.max_duration} s", info.notes)
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 140)
    console.print(table)
    return 0
