"""``chuizi status``: one line (or JSON object) per generation id."""

from __future__ import annotations

import argparse
import asyncio
import json
from decimal import Decimal
from typing import Any

from .. import ChuiziError
from ._connect import check_key, open_client
from ._output import format_money, library_logging, out
from ._results import error_info

__all__ = ["cmd_status"]


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
