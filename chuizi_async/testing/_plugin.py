"""pytest plugin: ``chuizi_server`` (a started :class:`FakeChuizi`) and ``chuizi_client``.

Registered through the ``pytest11`` entry point. The fixtures need pytest-asyncio; without it
the plugin defines nothing. As with any async fixture of pytest-asyncio, the tests that use
them are async tests: mark them ``@pytest.mark.asyncio`` or set ``asyncio_mode = "auto"``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from .._client import Client
from ._server import FakeChuizi

__all__ = ["FIXTURE_DEFAULTS"]

FIXTURE_DEFAULTS: Mapping[str, Any] = {"speed": 1000.0}
"""The keyword arguments the ``chuizi_server`` fixture gives :class:`FakeChuizi`."""

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised in a subprocess
    pass
else:

    @pytest_asyncio.fixture
    async def chuizi_server(request: pytest.FixtureRequest) -> AsyncIterator[FakeChuizi]:
        """A started :class:`FakeChuizi` (``speed=1000``: a 60 s generation takes 60 ms).

        Tweak it with indirect parametrization, giving keyword arguments that override
        :data:`FIXTURE_DEFAULTS`::

            @pytest.mark.parametrize("chuizi_server", [{"dialect": "reference"}], indirect=True)
            async def test_reference(chuizi_server: FakeChuizi) -> None: ...

        or write your own fixture: ``async with FakeChuizi(...) as server: yield server``.
        Runtime knobs (``faults``, ``balance``, ``auto_complete``) can also be set in the test.
        """
        overrides: Mapping[str, Any] = getattr(request, "param", {})
        async with FakeChuizi(**{**FIXTURE_DEFAULTS, **overrides}) as server:
            yield server

    @pytest_asyncio.fixture
    async def chuizi_client(chuizi_server: FakeChuizi) -> AsyncIterator[Client]:
        """An open ``Client`` of ``chuizi_server``, on its clock (``time_scale=speed``)::

        @pytest.mark.asyncio
        async def test_generate(chuizi_client: chuizi_async.Client) -> None:
            video = await chuizi_client.generate("google/veo-3.1-fast", "a cat")
            assert video.url.endswith(".mp4")
        """
        async with chuizi_server.client() as client:
            yield client
