"""A batch's ``max_cost``: what was spent, what is in flight, and what the next one may cost.

Each request is estimated, by model: the mean of the costs this batch has seen, else the price
``GET /v1/models`` lists for it (read once per batch, when first needed), else the highest mean
seen of another model. With no estimate at all, one generation at a time until a cost is known.

A video whose cost cannot be learned (no cost in its status answer, no billing record) counts
its estimate as spent: a guard must not believe a clip was free. With no estimate either, the
limit cannot be kept and nothing more is submitted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import anyio

from ._catalogue import lookup_model
from ._exceptions import ChuiziError, CostLimitExceeded, InvalidRequest
from ._models import GenerationRequest, RemoteModel, Video
from ._parsing import json_decimal, json_int
from ._report import format_money

__all__ = ["WAIT", "CostGuard", "Prices", "model_key", "price_estimate"]

logger = logging.getLogger("chuizi_async")

WAIT = CostLimitExceeded("wait for the generations in flight")
"""Not a refusal: the submission may go once what is in flight has finished."""

_UNITS = {
    "second": ("per_second", "price_per_second", "second", "price", "amount"),
    "request": ("per_request", "price_per_request", "request", "price", "amount"),
}


def model_key(model: str) -> str:
    """One name per model: the catalogue's id for a bare alias, else the name as given."""
    info = lookup_model(model)
    return info.id if info is not None else model


def price_estimate(pricing: Mapping[str, Any], seconds: int | None) -> Decimal | None:
    """The price of one video from a ``pricing`` entry of ``/v1/models``, or None.

    ``unit: "second"`` needs the clip's length; ``"request"`` is the price itself; a price
    per token (or any other unit) says nothing about a video.
    """
    unit = pricing.get("unit")
    if not isinstance(unit, str):
        return None
    keys = _UNITS.get(unit.lower().removeprefix("per_").rstrip("s"))  # "seconds", "per_second"
    if keys is None:
        return None
    price = next(
        (p for k in keys if (p := json_decimal(pricing.get(k))) is not None and p >= 0), None
    )
    if price is None or keys is _UNITS["request"]:
        return price
    return price * seconds if seconds is not None else None


class Prices:
    """The prices of ``/v1/models``, by model; an empty one when the list had none to use."""

    def __init__(self, models: Iterable[RemoteModel] = ()) -> None:
        self._by_name: dict[str, RemoteModel] = {}
        for model in models:
            if model.pricing:
                for name in (model.id, *model.aliases):
                    self._by_name.setdefault(model_key(name), model)

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def estimate(self, request: GenerationRequest) -> Decimal | None:
        """The listed price of ``request``; without a duration, of the model's longest clip."""
        model = self._by_name.get(model_key(request.model))
        if model is None:
            return None
        seconds = request.duration
        if seconds is None:  # the server's default length is not documented: the longest
            info = lookup_model(request.model)
            seconds = (
                info.max_duration if info is not None else json_int(model.raw.get("max_duration"))
            )
        return price_estimate(model.pricing, seconds)


class CostGuard:
    """``max_cost``: spent plus the estimate of what is in flight must stay within it."""

    def __init__(self, max_cost: Decimal | None) -> None:
        if max_cost is not None and (not isinstance(max_cost, Decimal) or max_cost < 0):
            raise InvalidRequest(f"max_cost must be a non-negative Decimal, not {max_cost!r}")
        self.max_cost = max_cost
        self.spent = Decimal(0)
        self.estimated = 0
        """How many videos of ``spent`` count an estimate: their cost could not be learned."""
        self.prices: Prices | None = None  # None: not read (yet)
        self._prices_read = anyio.Lock()
        self._seen: dict[str, list[Decimal]] = {}
        self._in_flight: dict[int, tuple[str, Decimal | None]] = {}  # model, listed price
        self._blind: str | None = None

    def needs_prices(self, request: GenerationRequest) -> bool:
        """Whether the model list should be read before deciding on ``request``."""
        return (
            self.max_cost is not None
            and self.prices is None
            and not self._seen.get(model_key(request.model))
        )

    async def read_prices(
        self, list_models: Callable[[], Awaitable[Sequence[RemoteModel]]]
    ) -> None:
        """The prices of ``/v1/models``, once per batch; none if the list cannot be read."""
        async with self._prices_read:
            if self.prices is not None:
                return
            try:
                self.prices = Prices(await list_models())
            except ChuiziError as exc:
                logger.info("no model prices for max_cost (%s): estimating from costs seen", exc)
                self.prices = Prices()

    def _estimate(self, model: str, listed: Decimal | None) -> Decimal | None:
        seen = self._seen.get(model)
        if seen:
            return sum(seen, Decimal(0)) / len(seen)
        if listed is not None:
            return listed
        means = [sum(v, Decimal(0)) / len(v) for v in self._seen.values() if v]
        return max(means) if means else None

    def _listed(self, request: GenerationRequest) -> Decimal | None:
        return self.prices.estimate(request) if self.prices else None

    def refusal(self, request: GenerationRequest) -> CostLimitExceeded | None:
        """None when this submission may go out now, ``WAIT`` for later, or why never."""
        if self.max_cost is None:
            return None
        if self._blind is not None:
            return CostLimitExceeded(f"not submitted: {self._blind}")
        estimate = self._estimate(model_key(request.model), self._listed(request))
        if estimate is None:
            # Nothing is known of costs yet: one generation at a time until one finishes.
            return WAIT if self._in_flight else None
        in_flight = sum(
            (self._estimate(m, listed) or Decimal(0) for m, listed in self._in_flight.values()),
            Decimal(0),
        )
        if self.spent + in_flight + estimate <= self.max_cost:
            return None
        if in_flight:
            return WAIT  # what is in flight may cost less than estimated: wait for it
        return CostLimitExceeded(
            f"not submitted: spent {format_money(self.spent)} plus ~{format_money(estimate)} "
            f"for this one would pass max_cost {format_money(self.max_cost)}"
        )

    def start(self, token: int, request: GenerationRequest) -> None:
        if self.max_cost is not None:  # only max_cost reads what is in flight
            self._in_flight[token] = (model_key(request.model), self._listed(request))

    def finish(self, token: int, outcome: Video | BaseException | None) -> None:
        model, listed = self._in_flight.pop(token, (None, None))
        if not isinstance(outcome, Video):
            return  # a failure is not documented as charged
        model = model or model_key(outcome.model or "")
        if outcome.cost is not None:
            self.spent += outcome.cost
            self._seen.setdefault(model, []).append(outcome.cost)
            return
        if self.max_cost is None:
            return
        estimate = self._estimate(model, listed)
        if estimate is None:
            self._blind = (
                f"the cost of {outcome.id} could not be learned (none in its status answer nor "
                "a billing record, no price listed): max_cost cannot be kept"
            )
            logger.warning("%s; no further submissions in this batch", self._blind)
            return
        logger.info("the cost of %s is unknown: ~$%s counted as spent", outcome.id, estimate)
        self.spent += estimate
        self.estimated += 1
