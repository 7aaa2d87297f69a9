"""``chuizi generate``: one video, its URL (or its JSON) printed, optionally downloaded."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from .. import ChuiziError, Generation, InvalidRequest, Video
from ._connect import check_key, open_client
from ._output import UsageError, err, library_logging, out, rich_console
from ._results import error_info

__all__ = ["cmd_generate"]


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
