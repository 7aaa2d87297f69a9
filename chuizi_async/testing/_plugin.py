"""pytest plugin: the ``chuizi_server`` fixture, a started :class:`FakeChuizi`.

Registered through the ``pytest11`` entry point. The fixture needs pytest-asyncio; without it
the plugin defines nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

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
