"""Which route reports a generation's status, learned once per client.

The provider's guide polls ``GET /v1/generation?id=``; its API reference polls
``GET /v1/videos/<id>``, where the guide's route answers a billing record (no status) or 404.
With ``"auto"`` the route the submit answer points at is tried first (an answer with
``task_id`` is the reference's); an answer without a status, or a 404, means "wrong route":
the other is tried, and the first that reports a status is kept for the client's life.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import quote

from ._exceptions import APIError, InvalidRequest, NotFoundError, no_status_answer
from ._models import GenerationStatus, Video
from ._parsing import WrongRoute, parse_check, parse_status
from ._responses import decode_json
from ._transport import Response

__all__ = ["ROUTES", "StatusRoute", "StatusRoutes", "billing_path"]

logger = logging.getLogger("chuizi_async")

StatusRoute = Literal["auto", "generation", "videos"]
ROUTES: tuple[StatusRoute, ...] = ("auto", "generation", "videos")
Get = Callable[[str], Awaitable[object]]
T = TypeVar("T")


class GetOnce(Protocol):
    """``get_once(path, accept)``: one GET, ``accept`` of its 2xx answer (``Sender.get_once``)."""

    def __call__(self, path: str, accept: Callable[[Response], T]) -> Awaitable[T]: ...


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")  # what quote() leaves as it is


def _path(route: StatusRoute, gen_id: str) -> str:
    quoted = gen_id if _UNRESERVED.fullmatch(gen_id) else quote(gen_id, safe="")
    if route == "videos":
        return f"/videos/{quoted}"
    return f"/generation?id={quoted}"


def _parse_on(route: StatusRoute, gen_id: str, raw: object) -> GenerationStatus:
    """The status in an answer of the (pinned or learned) ``route``."""
    try:
        return parse_status(raw, gen_id)
    except WrongRoute:
        raise _no_status_on(route, gen_id) from None


def _check_answer_on(
    route: StatusRoute, gen_id: str, response: Response
) -> GenerationStatus | Video:
    """``_parse_on`` of the answer's JSON, in one frame, for the poller's every check: a
    done generation's video alone (``parse_check``)."""
    raw = decode_json(response)
    try:
        return parse_check(raw, gen_id)
    except WrongRoute:
        raise _no_status_on(route, gen_id) from None


def _no_status_on(route: StatusRoute, gen_id: str) -> APIError:
    return no_status_answer(
        f"status_route={route!r} answers no status for {gen_id}; use status_route='auto'"
    )


def billing_path(gen_id: str) -> str:
    """The billing record of a generation: the guide's status route, on either deployment."""
    return _path("generation", gen_id)


class StatusRoutes:
    """The status route of one client: pinned, or learned from the first answer with a status."""

    def __init__(self, route: StatusRoute = "auto") -> None:
        if route not in ROUTES:
            raise InvalidRequest(f"status_route must be one of {', '.join(ROUTES)}")
        self.route: StatusRoute = route
        self._hint: StatusRoute | None = None

    def hint_from(self, submit_answer: Mapping[str, Any]) -> None:
        """The first submit answer says which document the server follows."""
        if self._hint is None:
            self._hint = "videos" if "task_id" in submit_answer else "generation"

    def check(self, gen_id: str, get_once: GetOnce) -> Awaitable[GenerationStatus | Video]:
        """The poller's check of ``gen_id``, to await: as ``fetch``, but on a known route the
        answer is parsed in ``get_once``'s frame (no frame of this class in between), and a
        done generation's is its video alone (``parse_check``)."""
        route = self.route
        if route == "auto":
            return self.fetch(gen_id, functools.partial(get_once, accept=decode_json))
        return get_once(_path(route, gen_id), functools.partial(_check_answer_on, route, gen_id))

    async def fetch(self, gen_id: str, get: Get) -> GenerationStatus:
        """The status of ``gen_id``; ``get(path)`` makes one GET and decodes its JSON."""
        route = self.route
        if route != "auto":
            return _parse_on(route, gen_id, await get(_path(route, gen_id)))
        # No lock: a slow answer must not hold every other check. The first answer that
        # reports a status fixes the route; until then concurrent checks may probe too.
        not_found: NotFoundError | None = None
        order: tuple[StatusRoute, ...] = ("generation", "videos")
        for route in reversed(order) if self._hint == "videos" else order:
            try:
                status = await self._fetch_on(route, gen_id, get)
            except WrongRoute:
                continue
            except NotFoundError as exc:
                not_found = exc
                continue
            if self.route == "auto":
                logger.info("status route learned: %s", route)
                self.route = route
            return status
        if not_found is not None:
            raise NotFoundError(
                404,
                f"generation {gen_id} was not found on either status route",
                not_found.error_type,
                code=not_found.code,
                request_id=not_found.request_id,  # the last answer's
            )
        raise no_status_answer(
            f"neither status route reports the status of {gen_id}: is base_url the video API?"
        )

    @staticmethod
    async def _fetch_on(route: StatusRoute, gen_id: str, get: Get) -> GenerationStatus:
        return parse_status(await get(_path(route, gen_id)), requested_id=gen_id)
