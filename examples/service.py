"""A small aiohttp.web service sharing one ``Client`` across requests.

    CHUIZI_API_KEY=ck-... python examples/service.py          # the real API
    python examples/service.py --simulate                      # the built-in simulator
    python examples/service.py --resume gen-0123456789abcdef   # take over a previous run's ids

``POST /videos {"model": ..., "prompt": ...}`` waits for the video and answers its URL (and its
id). ``GET /videos/<id>`` answers the status of any generation; ``GET /pending`` lists what the
client is still tracking.

A caller that goes away does not stop its generation: it was paid for, so the client keeps
tracking it until it is done. (``web.run_app`` leaves handlers running when their caller
disconnects; a server started with ``handler_cancellation=True``, as aiohttp's test server is,
cancels them, and the generation is tracked all the same.)

Graceful shutdown: on shutdown the client is closed *first* (``on_shutdown``), so requests still
waiting for a video answer at once, ``503`` with the generation id, instead of holding the
shutdown for minutes. ``aclose()`` resolves every pending generation with ``ClientClosed``,
carrying its id; the service hands those ids on (logged, and passed to ``handover``), and the
next process takes them over with ``make_app(..., resume=ids)``: ``client.track(id)`` each.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

import chuizi_async as ca

ClientFactory = Callable[[], ca.Client]
Handover = Callable[[list[str]], object]

CLIENT = web.AppKey("client", ca.Client)
HANDED_OVER = web.AppKey("handed_over", list[str])
"""The ids of the generations still pending when the service stopped (filled on shutdown)."""
log = logging.getLogger("service")


async def create_video(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    try:
        body: Any = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    handle: ca.Generation | None = None
    try:
        timeout = float(body.get("timeout", 600))
        handle = await client.submit(
            str(body.get("model", "")),
            str(body.get("prompt", "")),
            duration=body.get("duration"),
        )
        video = await handle.wait(timeout)
    except asyncio.CancelledError:
        # The caller went away. The generation (if accepted) was paid for: the client keeps
        # tracking it, and GET /pending or GET /videos/<id> still tell how it ends.
        what = handle.id if handle is not None else "submission not answered yet"
        log.info("caller went away (%s); what the server accepted stays tracked", what)
        raise
    except (ValueError, TypeError) as exc:  # InvalidRequest is a ValueError too
        return web.json_response({"error": str(exc)}, status=400)
    except ca.GenerationFailed as exc:
        return web.json_response({"error": exc.message, "id": exc.generation_id}, status=422)
    except ca.GenerationTimeout as exc:
        return web.json_response({"error": "still running", "id": exc.generation_id}, status=504)
    except ca.ClientClosed as exc:
        # Shutting down: the next process takes this id over; ask it with GET /videos/<id>.
        if exc.generation_id is not None:
            _hand_over(request.app, [exc.generation_id])
        answer = {"error": "the service is shutting down", "id": exc.generation_id}
        return web.json_response(answer, status=503)
    except ca.ChuiziError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    cost = str(video.cost) if video.cost is not None else None
    return web.json_response({"id": video.id, "url": video.url, "cost": cost})


async def video_status(request: web.Request) -> web.Response:
    """The status of any generation: one status request, no polling."""
    generation_id = request.match_info["id"]
    try:
        status = await request.app[CLIENT].retrieve(generation_id)
    except ca.NotFoundError:
        return web.json_response({"error": "not found", "id": generation_id}, status=404)
    except ca.ChuiziError as exc:
        return web.json_response({"error": str(exc), "id": generation_id}, status=502)
    answer: dict[str, Any] = {"id": generation_id, "status": status.state}
    if status.video is not None:
        answer["url"] = status.video.url
    if status.error is not None:
        answer["error"] = status.error.message
    return web.json_response(answer)


async def pending(request: web.Request) -> web.Response:
    handles = request.app[CLIENT].pending
    return web.json_response({"pending": [h.id for h in handles]})


def _hand_over(app: web.Application, ids: Iterable[str]) -> None:
    handed = app[HANDED_OVER]
    handed.extend(i for i in ids if i not in handed)


def client_context(
    make_client: ClientFactory, resume: Iterable[str], handover: Handover | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The client lives as long as the app: opened on startup, closed on shutdown."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with make_client() as client:
            app[CLIENT] = client
            for generation_id in resume:
                client.track(generation_id)
            yield
        # Cleanup runs after the waiting requests have answered: the list is complete.
        ids = app[HANDED_OVER]
        if ids:
            log.warning("stopped with %d generations pending; track() them: %s", len(ids), ids)
        if handover is not None:
            handover(list(ids))

    return context


async def close_client_first(app: web.Application) -> None:
    """On shutdown, before waiting for the requests in progress: hand over, then close.

    Requests waiting for a video then get ``ClientClosed`` (with the id) and answer at once.
    """
    client = app[CLIENT]
    _hand_over(app, [h.id for h in client.pending if h.id is not None])
    await client.aclose()


def make_app(
    make_client: ClientFactory = ca.Client,
    *,
    resume: Iterable[str] = (),
    handover: Handover | None = None,
) -> web.Application:
    """The service. ``resume``: ids a previous run handed over; ``handover`` gets the ids
    still pending at shutdown (they are logged in any case)."""
    app = web.Application()
    app[HANDED_OVER] = []
    app.cleanup_ctx.append(client_context(make_client, tuple(resume), handover))
    app.on_shutdown.append(close_client_first)
    app.add_routes(
        [
            web.post("/videos", create_video),
            web.get("/videos/{id}", video_status),
            web.get("/pending", pending),
        ]
    )
    return app


async def _simulated_app(resume: Iterable[str]) -> web.Application:
    from chuizi_async.testing import FakeChuizi

    server = FakeChuizi(speed=50)
    await server.start()

    def make_client() -> ca.Client:
        return ca.Client(server.api_key, base_url=server.base_url, time_scale=50)

    app = make_app(make_client, resume=resume)

    async def stop_simulator(app: web.Application) -> None:
        await server.aclose()

    app.on_cleanup.append(stop_simulator)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="chuizi_async example service")
    parser.add_argument("--simulate", action="store_true", help="use the built-in simulator")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--resume", nargs="*", default=[], help="ids a previous run handed over")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    app: web.Application | Awaitable[web.Application]
    app = _simulated_app(args.resume) if args.simulate else make_app(resume=args.resume)
    web.run_app(app, port=args.port)


if __name__ == "__main__":
    main()
