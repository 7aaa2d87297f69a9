"""A batch run in a process of its own, for the kill -9 tests of test_journal.py.

python -m tests.journal_worker JOURNAL N [MODE]     (CHUIZI_API_KEY / CHUIZI_BASE_URL from env)

MODE is the client's ``retry_submissions`` (default ``idempotent``).
"""

from __future__ import annotations

import asyncio
import sys

import chuizi_async as ca
from chuizi_async._retries import RetrySubmissions


async def main(journal: str, n: int, mode: RetrySubmissions = "idempotent") -> None:
    requests = [{"model": "google/veo-3.1-fast", "prompt": f"clip {i}"} for i in range(n)]
    requests += [{"model": "google/veo-3.1-fast", "prompt": "clip 0"}]  # a twin: two clips
    policy = ca.PollPolicy(first_poll_after=0.05, interval=0.05, max_interval=0.05)
    async with ca.Client(poll=policy, max_retries=8, retry_submissions=mode) as client:
        await client.generate_many(requests, journal=journal, return_exceptions=True)


if __name__ == "__main__":
    mode: RetrySubmissions = "safe" if sys.argv[3:] == ["safe"] else "idempotent"
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), mode))
