"""Generate every clip of a JSONL file on the built-in simulator: no key, no network.

    python examples/batch_on_simulator.py examples/prompts.jsonl [--speed 200]

The simulator (``chuizi_async.testing.FakeChuizi``) runs on loopback with time compressed
``--speed`` times; the client's clock is compressed to match (``Client(time_scale=)``).
Prompts containing "forbidden" fail with a content-policy error, as the real API would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi


def read_requests(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def run(path: Path, speed: float) -> int:
    requests = read_requests(path)
    async with FakeChuizi(speed=speed, fail_pattern="(?i)forbidden", seed=1) as server:
        client = ca.Client(server.api_key, base_url=server.base_url, time_scale=speed)
        async with client:
            started = time.perf_counter()
            done = failed = 0
            cost = Decimal(0)
            async with client.as_completed(requests) as results:
                async for handle in results:
                    try:
                        video = handle.result()
                    except ca.ChuiziError as exc:
                        failed += 1
                        print(f"failed     {handle.id}  {exc}")
                        continue
                    done += 1
                    cost += video.cost or 0
                    print(f"completed  {video.id}  {video.model:<24} ${video.cost}  {video.url}")
            elapsed = time.perf_counter() - started
            checks = server.counters.status_checks
            print(
                f"\n{done} completed, {failed} failed of {len(requests)} in {elapsed:.1f} s "
                f"(simulated {elapsed * speed / 60:.0f} min); cost ${cost}; "
                f"{server.counters.submissions} submissions, "
                f"{checks / max(1, len(requests)):.1f} status checks per clip"
            )
    return 0 if failed == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="JSONL: one {model, prompt, duration?} a line")
    parser.add_argument("--speed", type=float, default=200.0, help="time compression")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.input, args.speed)))


if __name__ == "__main__":
    main()
