"""``FakeChuizi(realism="harsh")``: every unkind answer the provider's pages allow, at once.

The simulator's defaults are the friendliest reading of the two documents. Where the pages
leave a choice open, the harsh preset takes the choice a client is most likely to get wrong,
so that a client tuned to the kind simulator fails our tests instead of our users:

=========================  ======================================================================
knob                        harsh value, and the page that allows it
=========================  ======================================================================
``dialect``                 ``"reference"``: status on ``/v1/videos/<id>``, ``succeeded``,
                            24-character ids, ``task_id`` (the API reference)
``wrap_data``               every answer in ``{"data": ...}`` ("an answer may be wrapped")
``video_url_at``            ``output.videos[0].url``: a list of videos, as OpenAI-style gateways
``cost_in_status``          ``False``: "billing is recorded after the task completes"
``billing_after_completion``  ``True``: the billing record 404s until then
``not_found_grace``         3 s of server time: "a gateway may answer 404 for an id it has just
                            given out"
``echo_request_id``         ``False``: the echo is the server's to give
``honour_idempotency``      ``False``: idempotency is "not documented"
``key_info_shape``          ``"legacy"``: the older ``key_info`` object
``rate_limit``              when one is set: its reset as epoch milliseconds (the format is
                            "not documented"; the headers page lists only Limit and Remaining)
=========================  ======================================================================

A knob given a value other than its default keeps it; the knobs are settable after
construction, so ``server.dialect = "guide"`` puts a harsh server on the guide's routes.
Faults are not part of the preset: they change outcomes, and a test states the ones it
survives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = ["HARSH", "HARSH_RESET_FORMAT", "REALISMS", "Realism", "harsh_changes"]

Realism = Literal["kind", "harsh"]
REALISMS: tuple[Realism, ...] = ("kind", "harsh")

HARSH: Mapping[str, Any] = {
    "dialect": "reference",
    "wrap_data": True,
    "video_url_at": "output.videos[0].url",
    "cost_in_status": False,
    "billing_after_completion": True,
    "not_found_grace": 3.0,
    "echo_request_id": False,
    "honour_idempotency": False,
    "key_info_shape": "legacy",
}
"""The knobs the harsh preset sets (unless given explicitly), with their unkind values."""


HARSH_RESET_FORMAT = "epoch_ms"
"""The reset format of a ``rate_limit`` left at its default under the harsh preset."""


def harsh_changes(server: Any) -> dict[str, Any]:
    """The harsh values of the knobs ``server`` (an attrs instance) has at their defaults."""
    fields = attrs.fields_dict(type(server))
    changes = {}
    for name, value in HARSH.items():
        if getattr(server, name) == fields[name].default:
            changes[name] = value
    limit = getattr(server, "rate_limit", None)
    if limit is not None and limit.reset_format == attrs.fields(type(limit)).reset_format.default:
        changes["rate_limit"] = attrs.evolve(limit, reset_format=HARSH_RESET_FORMAT)
    return changes
