"""What an error means, decided once for every part of the library (the errors: ``_exceptions``).

Small pure functions, each tested on its own: ``error_type(exc)`` names an error in one word of
a fixed vocabulary (the server's ``error.type`` where it gave one, else the word of
``ERROR_TYPES`` for the error's class); ``is_retryable`` (a request may go again),
``submission_uncertain`` (a submission may have created a generation all the same),
``is_transient`` (a failed status check says nothing about the generation),
``is_final_refusal`` and ``is_final_error`` (a journal records the request as failed for good),
``stops_batch`` and ``stops_model`` (a refusal no later request of a batch, or of its model,
can pass) and ``outcome_status`` (the CLI's word for a request's outcome). Rules on statuses
and headers alone (``should_retry(status)``, ``Retry-After``) are in ``_retries``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._exceptions import (
    APIConnectError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChuiziError,
    ClientClosed,
    CostLimitExceeded,
    GenerationCancelled,
    GenerationError,
    GenerationFailed,
    GenerationTimeout,
    InsufficientBalanceError,
    InvalidRequest,
    NotFoundError,
    NotSubmitted,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    SubmissionUncertain,
    UnreadableVideo,
    UnusableVideo,
)

__all__ = [
    "ERROR_TYPES",
    "error_type",
    "is_final_error",
    "is_final_refusal",
    "is_retryable",
    "is_transient",
    "outcome_status",
    "stops_batch",
    "stops_model",
    "submission_uncertain",
]

# What an error means where the server gave no ``error.type``: the most specific class wins.
# The server's own words (API reference) for its statuses, then the client's outcomes.
ERROR_TYPES: Mapping[type[BaseException], str] = {
    BadRequestError: "invalid_request_error",
    AuthenticationError: "authentication_error",
    InsufficientBalanceError: "insufficient_quota",
    PermissionDeniedError: "permission_error",
    NotFoundError: "not_found",
    RateLimitError: "rate_limit_error",
    ServerError: "server_error",
    APIError: "api_error",
    InvalidRequest: "invalid_request_error",  # refused before sending: the same meaning
    APIConnectError: "connection_error",  # before APITimeoutError: APIConnectTimeout is one
    APITimeoutError: "timeout",
    ResponseFormatError: "invalid_response",
    APIConnectionError: "connection_error",
    UnreadableVideo: "no_video_url",
    UnusableVideo: "unusable_video_url",
    GenerationFailed: "generation_failed",
    GenerationTimeout: "generation_timeout",
    GenerationCancelled: "cancelled",
    ClientClosed: "client_closed",
    SubmissionUncertain: "submission_uncertain",
    GenerationError: "generation_failed",
    CostLimitExceeded: "max_cost",
    NotSubmitted: "not_submitted",
    OSError: "file_error",  # a download that could not be written
    ChuiziError: "error",
}


def error_type(exc: BaseException) -> str:
    """What ``exc`` means, in one word: the server's ``error.type`` where it gave one
    (``invalid_request_error``, ``not_found``...), else the word for its class in
    ``ERROR_TYPES`` (``connection_error``, ``timeout``, ``not_submitted``...), else ``error``.
    """
    given = (
        getattr(exc, "error_type", None) if isinstance(exc, (APIError, GenerationFailed)) else None
    )
    if isinstance(given, str) and given.strip():
        return given.strip()
    for cls in type(exc).__mro__:
        word = ERROR_TYPES.get(cls)
        if word is not None:
            return word
    return "error"


# -- what an error means: the rules every part of the library asks ---------------------------


def is_retryable(exc: BaseException) -> bool:
    """Whether a request that raised this may succeed if sent again: no usable answer came
    (refused, reset, timed out, not the API's). An error status is judged by its status."""
    return isinstance(exc, APIConnectionError)


def submission_uncertain(exc: BaseException) -> bool:
    """Whether a submission that raised this may have created a generation all the same: it
    went out and no usable answer came back (timeout, reset, cut short, not the API's)."""
    return isinstance(exc, APIConnectionError) and not isinstance(exc, APIConnectError)


def is_transient(exc: BaseException) -> bool:
    """Whether a failed status check says nothing about the generation (check again later):
    no usable answer, a 429, a 5xx or a 408."""
    if isinstance(exc, (APIConnectionError, RateLimitError, ServerError)):
        return True
    return isinstance(exc, APIError) and exc.status_code == 408


_FINAL_REFUSALS = frozenset({400, 422})


def is_final_refusal(error: BaseException, model: str) -> bool:
    """Whether the server's refusal of a submission would be the same on every resend:
    400 or 422 (the request is wrong), or a 404 that names the model (``model_not_found``,
    or the model's id in the message). A 404 that says neither may be a wrong base URL,
    and 401, 402, 403, 429 and 5xx may pass later (a new key, a top-up, the daily reset):
    those are sent again by the next run."""
    if not isinstance(error, APIError):
        return False
    if error.status_code in _FINAL_REFUSALS:
        return True
    return error.status_code == 404 and (
        error.code == "model_not_found" or (bool(model) and model in error.message)
    )


def is_final_error(error: BaseException) -> bool:
    """Whether an error ends a generation for good (journaled as ``failed``).

    ``ClientClosed``, ``GenerationTimeout`` from a local wait and ``GenerationCancelled``
    are not: the generation may still finish, and the next run tracks it again. Nor is
    ``UnusableVideo``: the video was made and paid for, and the next run reads it again.
    """
    if isinstance(error, UnusableVideo):
        return False
    return isinstance(error, GenerationFailed) or (
        isinstance(error, ChuiziError) and getattr(error, "status_code", None) == 404
    )


_DAILY_CAP = "daily_limit_exceeded"


def _is_daily_cap(exc: APIError) -> bool:
    return _DAILY_CAP in (exc.code, exc.error_type)


def stops_batch(exc: BaseException) -> bool:
    """A refusal no other request of the batch can pass: the balance (402), the key's daily
    spending cap (403 ``daily_limit_exceeded``)."""
    if isinstance(exc, InsufficientBalanceError):
        return True
    return isinstance(exc, PermissionDeniedError) and _is_daily_cap(exc)


def stops_model(exc: BaseException) -> bool:
    """A refusal of the request's model for this key (any other 403 to a submission)."""
    return isinstance(exc, PermissionDeniedError) and not _is_daily_cap(exc)


def outcome_status(error: BaseException | None, *, accepted: bool) -> str:
    """The CLI's word for a request's outcome: ``completed``, ``failed``, ``invalid``,
    ``not_submitted`` or ``uncertain``. ``accepted``: the server gave it a generation id.

    A refusal that stops a batch (402, the daily cap) is ``not_submitted``: send it again later.
    """
    if error is None:
        return "completed"
    if isinstance(error, NotSubmitted):
        return "not_submitted"
    if isinstance(error, SubmissionUncertain):
        return "uncertain"
    if not accepted and stops_batch(error):
        return "not_submitted"
    if not accepted and isinstance(error, (InvalidRequest, BadRequestError)):
        return "invalid"
    return "failed"
