"""The account's calls: billing records, the live catalogue of models, the key's balance.

Bookkeeping beside the generations, over the client's send path (``Send``: retries, the
budget, redirects). A billing record is read at the budget's lowest priority (the
submissions'), so that it never takes a request from a status check; the API may record a
cost a moment after the status says done, so a record not there yet (404) is asked for
again a couple of times. The poller reads costs through ``billed_cost``, ``Client.billing``
through ``billing``; neither opens the client (the client does, before it calls).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

import anyio
import attrs

from ._budget import Priority
from ._exceptions import ChuiziError, InvalidRequest, NotFoundError
from ._models import BillingRecord, KeyInfo, RemoteModel, Video
from ._parsing import parse_billing, parse_key_info, parse_models
from ._status import billing_path
from ._submitter import Send

__all__ = ["Account", "generation_id_of"]

logger = logging.getLogger("chuizi_async")

_BILLING_ATTEMPTS = 3  # a billing record may appear a moment after the status says done


def generation_id_of(generation: Video | str) -> str:
    """The id ``billing()`` asks for: a ``Video``'s, or the string itself (stripped)."""
    generation_id = generation.id if isinstance(generation, Video) else generation
    if not isinstance(generation_id, str) or not generation_id.strip():
        raise InvalidRequest("billing() needs a Video or a generation id")
    return generation_id.strip()


@attrs.frozen
class Account:
    """The calls about the account rather than a generation, over ``send``.

    ``retry_delay(n)`` is the pause before the ``n``-th new ask for a billing record (the
    poll schedule's backoff for a transient failure).
    """

    send: Send
    retry_delay: Callable[[int], float]

    async def billing(self, generation_id: str) -> BillingRecord:
        """The billing record of ``generation_id``; ``NotFoundError`` if it never appears."""
        for attempt in range(_BILLING_ATTEMPTS):
            try:
                raw = await self.send("GET", billing_path(generation_id), priority=Priority.SUBMIT)
            except NotFoundError:
                if attempt == _BILLING_ATTEMPTS - 1:
                    raise
                await anyio.sleep(self.retry_delay(attempt + 1))
                continue
            return parse_billing(raw, requested_id=generation_id)
        raise AssertionError("unreachable")  # pragma: no cover

    async def billed_cost(self, generation_id: str) -> Decimal | None:
        """For the poller: a finished generation's cost from its billing record, or None."""
        try:
            record = await self.billing(generation_id)
        except ChuiziError as exc:
            logger.info("the cost of %s is unknown: no billing record (%s)", generation_id, exc)
            return None
        return record.cost

    async def models(self) -> list[RemoteModel]:
        """The live catalogue (``GET /v1/models``)."""
        return parse_models(await self.send("GET", "/models"))

    async def key_info(self) -> KeyInfo:
        """The API key's balance and limits (``GET /v1/key/info``)."""
        return parse_key_info(await self.send("GET", "/key/info"))
