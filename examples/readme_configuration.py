"""The README's configuration: the client's settings and ``PollPolicy``'s, at their defaults."""

from __future__ import annotations

import chuizi_async as ca

client = ca.Client(
    "ck-...",  # None (the default): the CHUIZI_API_KEY environment variable
    timeout=10.0,  # seconds per request
    max_retries=4,  # connection errors, timeouts, 408, 429 and 5xx
    retry_submissions="idempotent",  # or "safe": a submission is never billed twice
    poll=ca.PollPolicy(),  # when pending generations are checked (below)
    limits=ca.Limits(
        max_connections=64,  # the connection pool, and the workers sending a batch
        max_requests_per_second=None,  # a cap you know up front, whole client
    ),
    time_scale=1.0,  # divides every delay the client chooses (simulators, tests)
)

policy = ca.PollPolicy(
    first_poll_after=None,  # None: adaptive (scouts, then a grid learned from completions)
    interval=10.0,  # the provider's example: the adaptive schedule's scale ...
    max_interval=30.0,  # ... growing by `backoff` up to this
    backoff=1.0,
    jitter=0.1,  # ±10% so a batch does not poll in lockstep
    max_in_flight=16,  # status requests at once, whole client
    give_up_after=3600.0,
    not_found_grace=30.0,  # a 404 this soon after acceptance (or track()) is checked again
)

if __name__ == "__main__":
    print(client.limits, client.time_scale)
    print(policy)
