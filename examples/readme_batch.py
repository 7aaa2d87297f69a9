"""The README's "Use in a batch" and "Batches that survive a crash", complete.

CHUIZI_API_KEY=ck-... python examples/readme_batch.py
python examples/readme_batch.py --simulate
"""

from __future__ import annotations

import argparse
import asyncio
from decimal import Decimal
from pathlib import Path

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi

PROMPTS = ["a cat watching rain", "a fox crossing fresh snow", "a forbidden ritual at night"]


async def make_videos(client: ca.Client, prompts: list[str]) -> None:
    requests = [ca.GenerationRequest("google/veo-3.1-fast", p, duration=5) for p in prompts]

    # input order; a failure in its place
    results = await client.generate_many(requests, concurrency=50, return_exceptions=True)
    print(sum(isinstance(r, ca.Video) for r in results), "of", len(results), "done")

    # completion order, while submissions go on
    async with client.as_completed(requests) as finished:
        async for handle in finished:
            try:
                print(handle.result().url)
            except ca.GenerationFailed as e:
                print(e.generation_id, e.message)


async def resumable(client: ca.Client, requests: list[ca.GenerationRequest]) -> list[Path]:
    results = await client.generate_many(
        requests,
        journal="batch.journal",  # a SQLite file: run the same batch again to resume
        max_cost=Decimal("25.00"),  # US dollars
        return_exceptions=True,
    )
    paths = []
    for result in results:
        if isinstance(result, ca.Video):
            paths.append(await client.download(result, "videos/"))  # videos/gen-….mp4
    return paths


async def main(simulate: bool) -> None:
    requests = [ca.GenerationRequest("google/veo-3.1-fast", p, duration=5) for p in PROMPTS]
    if not simulate:
        async with ca.Client() as client:  # key from CHUIZI_API_KEY
            await make_videos(client, PROMPTS)
            print(*await resumable(client, requests), sep="\n")
        return
    async with FakeChuizi(speed=100) as server, server.client() as client:
        await make_videos(client, PROMPTS)
        print(*await resumable(client, requests), sep="\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulate", action="store_true", help="the built-in simulator")
    asyncio.run(main(parser.parse_args().simulate))
