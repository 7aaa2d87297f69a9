"""A small aiohttp.web service sharing one ``Client`` across requests.

    CHUIZI_API_KEY=ck-... python examples/service.py          # the real API
    python examples/service.py --simulate                      # the built-in simulator

``POST /videos {"model": ..., "prompt": ...}`` waits for the video and answers its URL. A caller
that goes away does not stop the generation: it was paid for, so the client keeps tracking it
(``GET /pending`` lists what is still pending). On shutdown, ``aclose()`` resolves what is left
with ``ClientClosed``; their ids are logged so that another process can ``track()`` them.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

import chuizi_async as ca

CLIENT = web.AppKey("client", ca.Client)
log = logging.getLogger("service")


async def create_video(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    body: Any = await request.json()
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    try:
        video = await client.generate(
            str(body.get("model", "")),
            str(body.get("prompt", "")),
            duration=body.get("duration"),
            timeout=float(body.get("timeout", 600)),
        )
    except ca.InvalidRequest as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except ca.GenerationFailed as exc:
        return web.json_response({"error": exc.message, "id": exc.generation_id}, status=422)
    except ca.GenerationTimeout as exc:
        return web.json_response({"error": "still running", "id": exc.generation_id}, status=504)
    except ca.ChuiziError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    cost = str(video.cost) if video.cost is not None else None
    return web.json_response({"id": video.id, "url": video.url, "cost": cost})


async def pending(request: web.Request) -> web.Response:
    handles = request.app[CLIENT].pending
    return web.json_response({"pending": [h.id for h in handles]})


def client_context(make_client: Any) -> Any:
    """The client lives as long as the app: opened on startup, closed on cleanup."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with make_client() as client:
            app[CLIENT] = client
            yield
            left = [h.id for h in client.pending]
            if left:
                log.warning("shutting down with %d pending generations: %s", len(left), left)

    return context


def make_app(make_client: Any = ca.Client) -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(client_context(make_client))
    app.add_routes([web.post("/videos", create_video), web.get("/pending", pending)])
    return app


async def _simulated_app() -> web.Application:
    from chuizi_async.testing import FakeChuizi

    server = FakeChuizi(speed=50)
    await server.start()

    def make_client() -> ca.Client:
        policy = ca.PollPolicy(time_scale=50)
        return ca.Client(server.api_key, base_url=server.base_url, poll=policy)

    app = make_app(make_client)

    async def stop_simulator(app: web.Application) -> None:
        await server.aclose()

    app.on_cleanup.append(stop_simulator)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="chuizi_async example service")
    parser.add_argument("--simulate", action="store_true", help="use the built-in simulator")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    web.run_app(_simulated_app() if args.simulate else make_app(), port=args.port)


if __name__ == "__main__":
    main()
