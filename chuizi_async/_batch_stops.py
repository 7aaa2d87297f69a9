"""When a batch stops submitting: a refusal that no later request escapes, or a server that
cannot be reached at all. What is held back resolves with ``not_sent`` of the reason."""

from __future__ import annotations

import logging

from ._cost import model_key
from ._error_rules import stops_batch, stops_model
from ._exceptions import (
    APIConnectError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    NotSubmitted,
    SubmissionUncertain,
)

__all__ = ["UNREACHABLE_AFTER", "Stops", "not_sent", "unreachable"]

logger = logging.getLogger("chuizi_async")

UNREACHABLE_AFTER = 3
"""Submissions in a row that made no connection, once the server had answered one, that
stop a batch (a server that answered may be away for a moment: one failure is not enough)."""


def unreachable(error: BaseException, *, answered: bool, failures_in_a_row: int) -> bool:
    """Whether a submission's final error (after its retries) says no request of the batch
    can get through, so that the batch stops submitting.

    Before the server has answered any submission of the batch: no connection was made
    (refused, DNS, TLS, a connect timeout) or no answer came in time. A reset or an answer cut
    short is not: something answered, and the next request may get through. After an answer:
    only ``UNREACHABLE_AFTER`` submissions in a row (this one included) that made no
    connection at all; a slow answer then is the server's load, not its absence.
    """
    if not answered:
        return isinstance(error, (APIConnectError, APITimeoutError))
    return isinstance(error, APIConnectError) and failures_in_a_row >= UNREACHABLE_AFTER


def not_sent(first: APIError | APIConnectionError) -> APIError | NotSubmitted:
    """The error of a request held back by ``first``: a refusal's kind, with no request; or,
    held back because the server cannot be reached, ``NotSubmitted`` (reason
    ``"unreachable"``)."""
    if isinstance(first, APIConnectionError):
        message = f"not submitted: the server could not be reached ({first})"
        return NotSubmitted(message, reason="unreachable")
    return type(first)(
        first.status_code, f"not submitted: {first.message}", first.error_type, code=first.code
    )


class Stops:
    """What one batch has learned from the ends of its submissions about what not to send."""

    def __init__(self) -> None:
        self.by: APIError | APIConnectionError | None = None
        """What stopped every submission (a 402, a daily cap, an unreachable server)."""
        self.models: dict[str, APIError] = {}
        """The 403 that stopped the submissions of a model, by ``model_key``."""
        self.answered = False
        """Whether the server answered a submission of this batch."""
        self._connect_failures = 0  # submissions in a row that made no connection

    def held_back(self, model: str) -> APIError | None:
        """The refusal that holds back a request of ``model``, if one does."""
        models = self.models
        return models.get(model_key(model)) if models else None

    def contact(self, error: BaseException | None) -> bool:
        """Learn from a submission's end (``error`` None: accepted) whether the server can be
        reached at all; True if the batch stops now."""
        if isinstance(error, SubmissionUncertain):  # no answer to it: judge by why
            error = error.__cause__
        if error is None or isinstance(error, APIError):  # an answer came back
            self.answered, self._connect_failures = True, 0
            return False
        if not isinstance(error, APIConnectionError):  # refused before sending
            return False
        if isinstance(error, APIConnectError):
            self._connect_failures += 1
        answered, failures = self.answered, self._connect_failures
        if self.by is None and unreachable(error, answered=answered, failures_in_a_row=failures):
            logger.warning("%s: no further submissions in this batch", error)
            self.by = error
            return True
        return False

    def refused(self, model: str, exc: APIError) -> None:
        """Learn from a refused submission what else not to send."""
        if stops_batch(exc):
            if self.by is None:
                logger.warning("%s: no further submissions in this batch", exc)
                self.by = exc
        elif stops_model(exc) and model_key(model) not in self.models:
            logger.warning("%s: no further submissions of %s in this batch", exc, model)
            self.models[model_key(model)] = exc
