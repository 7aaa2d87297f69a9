"""The clock of schedules and budgets: the event loop's own (``time.monotonic``).

``anyio.current_time()`` reads the same clock but looks the backend up on every call, which
shows in the cost of each status check; deadlines computed here are slept on with anyio.
"""

from __future__ import annotations

import time

__all__ = ["now"]

now = time.monotonic
