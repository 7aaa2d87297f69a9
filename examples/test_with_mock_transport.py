"""The README's unit tests with ``MockTransport``: a Client answered by a function, no server.

    python -m pytest examples/test_with_mock_transport.py

``make_clip`` stands for your code; each test gives it a client whose answers come from a handler.
"""

from __future__ import annotations

from typing import Any

import pytest

import chuizi_async as ca


async def make_clip(client: ca.Client, prompt: str) -> str | None:
    """The code under test: the video's URL, or None when the provider refuses the prompt."""
    try:
        video = await client.generate("google/veo-3.1-fast", prompt)
    except ca.GenerationFailed:
        return None
    return video.url


FAST = 1000  # the client waits milliseconds where it would wait seconds: Client(time_scale=)


def fake_api(**outcome: Any) -> ca.MockTransport:
    """Accepts a submission as gen-1, then answers every status check with ``outcome``."""

    def handler(request: ca.Request) -> ca.Response:
        if request.method == "POST":
            return ca.json_response({"id": "gen-1", "status": "processing"})
        return ca.json_response({"id": "gen-1", **outcome})

    return ca.MockTransport(handler)


@pytest.mark.asyncio
async def test_make_clip_returns_the_video_url() -> None:
    url = "https://media.chuizi.ai/videos/gen-1.mp4"
    transport = fake_api(status="completed", output={"video_url": url})
    async with ca.Client("ck-test", transport=transport, time_scale=FAST) as client:
        assert await make_clip(client, "a cat") == url
    submission = transport.requests[0]
    assert submission.method == "POST" and submission.headers["Idempotency-Key"]


@pytest.mark.asyncio
async def test_make_clip_returns_none_for_a_refused_prompt() -> None:
    transport = fake_api(status="failed", error={"message": "Content policy violation"})
    async with ca.Client("ck-test", transport=transport, time_scale=FAST) as client:
        assert await make_clip(client, "a forbidden cat") is None
