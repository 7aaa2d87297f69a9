"""The README's "Testing your own code", as a test file of yours would hold it.

    python -m pytest examples/test_with_simulator.py

The fixtures ``chuizi_server`` and ``chuizi_client`` come with the package (a pytest plugin);
they need pytest-asyncio, and the tests using them are async (``@pytest.mark.asyncio``).
"""

from __future__ import annotations

import pytest

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi


@pytest.mark.asyncio
async def test_my_code(chuizi_server: FakeChuizi, chuizi_client: ca.Client) -> None:
    video = await chuizi_client.generate("google/veo-3.1-fast", "a cat")
    assert chuizi_server.generations[video.id].status == "completed"


@pytest.mark.asyncio
async def test_generate_on_the_simulator() -> None:
    async with FakeChuizi(speed=1000) as server, server.client() as client:
        video = await client.generate("google/veo-3.1-fast", "a cat")
        assert server.counters.submissions == 1
    assert video.url.endswith(".mp4")
