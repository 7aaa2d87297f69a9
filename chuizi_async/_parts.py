"""The client's parts, built once from its checked settings, each given the others it needs.

``Client.__init__`` checks its arguments and calls ``build_parts``; the client is then a front
over these (the README's Development section walks them in the order a request flows):

- ``_sender.Sender``: every API call (the API key's headers, the request budget, retries,
  redirects, then the ``Transport``), and downloads on the same path outside the budget;
- ``_lifecycle.Lifecycle``: opens the client in the running event loop, reopens it in the
  next one, closes it once; it holds the background tasks (``_background.BackgroundTasks``:
  the poller, each submission's send, ``as_completed``'s submitter) and the current
  ``_tracker.Tracker``, a new one per event loop (``new_tracker``: a ``_poller.Poller`` that
  checks through ``_status.StatusRoutes.check`` and the sender's ``get_once``);
- ``_submitter.Submitter``: every submission; batches get it in ``_batch.BatchParts``;
- ``_status.StatusRoutes``: which route reports a status (to the poller and ``retrieve``);
- ``_account.Account``: billing records, the live catalogue, the API key's balance.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable, Sequence

import attrs

from ._account import Account
from ._auth import AuthHeaders
from ._batch import BatchParts, Track
from ._budget import Priority, RequestBudget
from ._config import Limits, Secret
from ._generation import Generation
from ._lifecycle import Lifecycle
from ._models import GenerationStatus, RemoteModel, Video
from ._policy import PollPolicy, Schedule
from ._poller import Poller, PollerStats
from ._retries import RetrySubmissions
from ._sender import ClientStats, Sender
from ._status import StatusRoute, StatusRoutes
from ._submitter import Submitter
from ._tracker import Tracker
from ._transport import AiohttpTransport, Transport, pool_size

__all__ = ["Parts", "build_parts"]

_STUCK_CHECK = 8  # a status check is abandoned after timeout / this (see Poller.check_timeout) ...
_STUCK_FLOOR = 5.0  # ... but never before this many seconds (of the API's time), nor timeout / 2


@attrs.frozen(kw_only=True)
class Parts:
    """What ``build_parts`` made: the client keeps each as an attribute of its own.

    ``retrieve(generation_id)`` is ``Client.retrieve``'s status request: on the status route,
    retried if transient (the poller's checks make one attempt).
    """

    budget: RequestBudget
    stats: ClientStats
    sender: Sender
    account: Account
    retrieve: Callable[[str], Awaitable[GenerationStatus]]
    lifecycle: Lifecycle
    submitter: Submitter
    batch: BatchParts


def build_parts(
    *,
    api_key: Secret,
    base_url: str,
    policy: PollPolicy,
    limits: Limits,
    time_scale: float,
    timeout: float,
    max_retries: int,
    status_route: StatusRoute,
    transport: Transport | None,
    retry_submissions: RetrySubmissions,
    track: Track,
    list_models: Callable[[], Awaitable[Sequence[RemoteModel]]],
) -> Parts:
    """The parts of one client. ``track`` and ``list_models`` are the client's own methods,
    which batches call (a journal's accepted id, ``max_cost``'s prices)."""
    transport = transport or AiohttpTransport(max_connections=limits.max_connections)
    budget = RequestBudget(max_rate=limits.max_requests_per_second, time_scale=time_scale)
    schedule = Schedule(policy, saturated=budget.saturated, time_scale=time_scale)
    stats = ClientStats()
    sender = Sender(
        auth=AuthHeaders(base_url, api_key),
        transport=transport,
        budget=budget,
        timeout=timeout,
        max_retries=max_retries,
        time_scale=time_scale,
        stats=stats,
    )
    account = Account(send=sender.send, retry_delay=schedule.retry_delay)
    routes = StatusRoutes(status_route)
    # at the poller's priority, without a timer of the transport's per check: the poller's
    # watchdog abandons a stuck check sooner (check_timeout below is at most half the timeout)
    get_once = functools.partial(sender.get_once, timeout=math.inf)
    get_retried = functools.partial(sender.send, "GET", priority=Priority.POLL)

    def fetch_status(handle: Generation) -> Awaitable[GenerationStatus | Video]:
        # the poller's check, one attempt: a plain function returning the check's awaitable,
        # no frame of its own per check
        assert handle.id is not None
        stats.status_checks += 1
        return routes.check(handle.id, get_once)

    def new_tracker(poller_stats: PollerStats) -> Tracker:
        timeout = sender.timeout  # as it is now (``client.timeout`` may have been set since)
        poller = Poller(
            fetch=fetch_status,
            schedule=schedule,
            give_up_after=policy.give_up_after / time_scale,
            max_in_flight=policy.max_in_flight,
            not_found_grace=policy.not_found_grace / time_scale,
            billed_cost=account.billed_cost,
            check_timeout=max(timeout / _STUCK_CHECK, min(timeout / 2, _STUCK_FLOOR / time_scale)),
            stats=poller_stats,
        )
        return Tracker(poller)

    lifecycle = Lifecycle(new_tracker=new_tracker, budget=budget, transport=transport)
    start_soon = lifecycle.background.start_soon  # the client's background tasks
    submitter = Submitter(
        send=sender.send,
        register=lifecycle.register,
        start_soon=start_soon,
        ensure_open=lifecycle.ensure_open,
        retry_submissions=retry_submissions,
        on_answer=routes.hint_from,
        stats=stats,
    )
    batch = BatchParts(
        submitter=submitter,
        # a transport of one's own that does not say its pool: this client's setting
        workers=pool_size(transport) or limits.max_connections,
        track=track,
        want_cost=lifecycle.want_cost,  # the tracker of the loop it is open in
        list_models=list_models,
        ensure_open=lifecycle.ensure_open,
        start_soon=start_soon,
    )
    return Parts(
        budget=budget,
        stats=stats,
        sender=sender,
        account=account,
        retrieve=functools.partial(routes.fetch, get=get_retried),
        lifecycle=lifecycle,
        submitter=submitter,
        batch=batch,
    )
