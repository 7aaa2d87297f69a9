"""The README's "Use in a service", complete: one client for the app's life.

    CHUIZI_API_KEY=ck-... python examples/readme_service.py "a cat watching rain"
    python examples/readme_service.py --simulate "a cat watching rain"

``VideoService`` is what a web framework's app would hold: build it at startup, call
``handler`` from request handlers (as many at once as you like), ``shutdown`` at the end.
"""

from __future__ import annotations

import argparse
import asyncio

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi


class VideoService:
    """One client for the app's life, shared by every request handler."""

    def __init__(self, client: ca.Client | None = None) -> None:
        self.client = client or ca.Client()  # key from CHUIZI_API_KEY

    async def handler(self, prompt: str) -> str:
        video = await self.client.generate("google/veo-3.1-fast", prompt, duration=5, timeout=600)
        return video.url  # https://media.chuizi.ai/videos/gen-….mp4

    async def shutdown(self) -> None:
        await self.client.aclose()  # pending generations resolve with ClientClosed (their ids)


async def main(prompts: list[str], simulate: bool) -> None:
    if not simulate:
        service = VideoService()
        try:
            print(*await asyncio.gather(*map(service.handler, prompts)), sep="\n")
        finally:
            await service.shutdown()
        return
    async with FakeChuizi(speed=100) as server:
        service = VideoService(server.client())
        try:
            print(*await asyncio.gather(*map(service.handler, prompts)), sep="\n")
        finally:
            await service.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts", nargs="+")
    parser.add_argument("--simulate", action="store_true", help="the built-in simulator")
    args = parser.parse_args()
    asyncio.run(main(args.prompts, args.simulate))
