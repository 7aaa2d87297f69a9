"""``chuizi balance`` (alias ``key``): the key's balance and limits."""

from __future__ import annotations

import argparse
import asyncio
import json
from decimal import Decimal
from typing import Any

from .. import ChuiziError, KeyInfo
from ._connect import check_key, open_client
from ._output import err, format_money, library_logging, out
from ._results import error_info

__all__ = ["cmd_balance"]


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
