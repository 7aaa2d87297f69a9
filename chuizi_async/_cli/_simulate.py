"""``chuizi simulate``: the API simulator as a server on 127.0.0.1."""

from __future__ import annotations

import argparse

__all__ = ["cmd_simulate"]


def cmd_simulate(args: argparse.Namespace) -> int:
    from ..testing._standalone import run  # `python -m chuizi_async.testing` itself

    return run(args)
