"""The README's polling policy: every field of ``PollPolicy`` at its default, explained."""

from __future__ import annotations

import chuizi_async as ca

policy = ca.PollPolicy(
    first_poll_after=None,  # None: adaptive (scouts, then a grid learned from completions)
    interval=10.0,  # the provider's example: the adaptive schedule's scale ...
    max_interval=30.0,  # ... growing by `backoff` up to this
    backoff=1.0,
    jitter=0.1,  # ±10% so a batch does not poll in lockstep
    max_in_flight=16,  # status requests at once, whole client
    max_requests_per_second=None,  # a cap you know up front, whole client
    give_up_after=3600.0,
    time_scale=1.0,  # compress every delay (for simulators)
    not_found_grace=30.0,  # a 404 this soon after acceptance (or track()) is checked again
)

if __name__ == "__main__":
    print(policy)
