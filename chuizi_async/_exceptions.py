"""Every error the library raises, in one place.

The hierarchy::

    ChuiziError
    ├── InvalidRequest (also ValueError)      refused before anything was sent
    ├── APIError                              the server answered with an error status
    │   ├── BadRequestError                   400, 422
    │   ├── AuthenticationError               401
    │   ├── InsufficientBalanceError          402 (never retried; a batch stops submitting)
    │   ├── PermissionDeniedError             403
    │   ├── NotFoundError                     404
    │   ├── RateLimitError                    429 (retried, then raised)
    │   └── ServerError                       5xx
    ├── APIConnectionError                    no usable answer: refused, reset, cut short
    │   ├── APIConnectError                   no connection was made: nothing was sent
    │   │   └── APIConnectTimeout (also APITimeoutError)
    │   ├── APITimeoutError (also TimeoutError)
    │   └── ResponseFormatError               an answer that is not the API's (HTML, bad JSON)
    ├── GenerationError                       about one generation, carries its id
    │   ├── GenerationFailed                  the server reports "failed"
    │   │   └── UnusableVideo                 reported done, with no video a client may use
    │   │       └── UnreadableVideo           ... no video URL where the documents put one
    │   ├── GenerationTimeout (also TimeoutError)
    │   ├── GenerationCancelled               the handle was cancelled locally
    │   ├── ClientClosed                      the client closed while it was pending
    │   └── SubmissionUncertain               a submission went out, no answer came back
    └── NotSubmitted                          a batch held this request back (.reason)
        └── CostLimitExceeded                 it would have passed max_cost

``InvalidRequest`` is also raised for a bad ``Client`` configuration (an http base URL to a
remote host, a missing key), so that ``except ValueError`` and ``except ChuiziError`` both work.

Which class an error answer becomes is decided here (``error_for_status``). What an error
*means* (retryable, transient for a status check, final for a journal, a batch's stop, its
one word in ``error_type``, the CLI's outcome) is decided in ``_error_rules`` alone, by small
pure functions; rules on statuses and headers alone (``Retry-After``) are in ``_retries``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._models import GenerationRequest

__all__ = [
    "APIConnectError",
    "APIConnectTimeout",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChuiziError",
    "ClientClosed",
    "CostLimitExceeded",
    "GenerationCancelled",
    "GenerationError",
    "GenerationFailed",
    "GenerationTimeout",
    "InsufficientBalanceError",
    "InvalidRequest",
    "NotFoundError",
    "NotSubmitted",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseFormatError",
    "ServerError",
    "SubmissionUncertain",
    "UnreadableVideo",
    "UnusableVideo",
    "error_for_status",
    "no_status_answer",
]


class ChuiziError(Exception):
    """The root of every error raised by chuizi_async."""


class InvalidRequest(ChuiziError, ValueError):
    """Refused before sending: the request or configuration cannot be right."""


class APIError(ChuiziError):
    """The server answered with an error status.

    ``code`` is the body's machine-readable code (``"daily_limit_exceeded"``); ``request_id``
    the answer's ``X-Request-Id`` (else the one sent): quote it to the provider's support.
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        error_type: str | None = None,
        *,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{status_code}: {message}" if status_code else message)
        self.status_code = status_code
        self.message = message
        self.error_type = error_type
        self.code = code
        self.request_id = request_id

    def __reduce__(self) -> tuple[object, ...]:
        state = {"code": self.code, "request_id": self.request_id}
        return (type(self), (self.status_code, self.message, self.error_type), state)


class BadRequestError(APIError):
    """400 or 422: the server rejected a parameter."""


class AuthenticationError(APIError):
    """401: the key is missing, malformed or revoked."""


class InsufficientBalanceError(APIError):
    """402: the balance is too low for the estimated cost. Top up, then resume."""


class PermissionDeniedError(APIError):
    """403: the key's policy forbids this (model not allowed, IP, daily spend cap)."""


class NotFoundError(APIError):
    """404: unknown model or generation id."""


class RateLimitError(APIError):
    """429: a rate limit was hit and the retries ran out."""

    retry_after: float | None = None
    """Seconds the server asked to wait before the next try (``Retry-After``), if it said."""

    def __reduce__(self) -> tuple[object, ...]:
        cls, args, state = super().__reduce__()
        assert isinstance(state, dict)
        return (cls, args, {**state, "retry_after": self.retry_after})


class ServerError(APIError):
    """5xx: the gateway or the upstream provider failed."""


class APIConnectionError(ChuiziError):
    """No usable answer: connection refused or reset, or a body that is not the API's."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """The server did not answer within the client's timeout."""


class APIConnectError(APIConnectionError):
    """No connection was made (refused, DNS, TLS handshake): nothing was sent."""


class APIConnectTimeout(APIConnectError, APITimeoutError):
    """Timed out connecting, or waiting for a pooled connection: nothing was sent."""


class ResponseFormatError(APIConnectionError):
    """An answer that is not what the API documents: not JSON, too large, missing fields."""


class GenerationError(ChuiziError):
    """An outcome of one generation; ``generation_id`` says which."""

    def __init__(self, generation_id: str | None, message: str) -> None:
        super().__init__(f"{generation_id}: {message}" if generation_id else message)
        self.generation_id = generation_id
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.generation_id, self.message))


class GenerationFailed(GenerationError):
    """The server reports the generation as failed (content policy, upstream error)."""

    def __init__(
        self, generation_id: str | None, message: str, error_type: str | None = None
    ) -> None:
        super().__init__(generation_id, message)
        self.error_type = error_type

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.generation_id, self.message, self.error_type))


class UnusableVideo(GenerationFailed):
    """Reported done, with no video a client may use (a ``javascript:`` or ``file:`` URL).

    Final: the client re-reads the answer a couple of times (it may have been torn), then
    gives up. ``excerpt`` is the start of what the server sent, any key redacted.
    """

    def __init__(
        self,
        generation_id: str | None,
        message: str,
        error_type: str | None = "unusable_video_url",
        *,
        excerpt: str = "",
    ) -> None:
        super().__init__(generation_id, message, error_type)
        self.excerpt = excerpt

    def __reduce__(self) -> tuple[object, ...]:
        args = (self.generation_id, self.message, self.error_type)
        return (type(self), args, {"excerpt": self.excerpt})


class UnreadableVideo(UnusableVideo):
    """Reported done, but the answer has no video URL in any place the documents use."""

    def __init__(
        self,
        generation_id: str | None,
        message: str,
        error_type: str | None = "no_video_url",
        *,
        excerpt: str = "",
    ) -> None:
        super().__init__(generation_id, message, error_type, excerpt=excerpt)


class GenerationTimeout(GenerationError, TimeoutError):
    """The generation did not finish in time. From ``wait(timeout)`` it is still tracked."""

    def __init__(self, generation_id: str | None, message: str = "") -> None:
        super().__init__(generation_id, message or "timed out waiting for the video")


class GenerationCancelled(GenerationError):
    """The handle was cancelled locally; the server keeps generating (and billing) it."""

    def __init__(self, generation_id: str | None, message: str = "") -> None:
        super().__init__(
            generation_id,
            message or "tracking cancelled; the server has no cancel endpoint, it may still bill",
        )


class ClientClosed(GenerationError):
    """The client closed while the generation was pending; ``track(id)`` it on another."""

    def __init__(self, generation_id: str | None, message: str = "") -> None:
        super().__init__(
            generation_id,
            message or "client closed before the generation finished; track(id) resumes it",
        )


class SubmissionUncertain(GenerationError):
    """A submission went out and no answer came back: it may or may not have created (and
    billed) a generation. Raised instead of a retry by ``Client(retry_submissions="safe")``.

    ``idempotency_key`` is the ``Idempotency-Key`` it was sent with, ``request`` what it asked
    for; a resend with the same one is safe only on a server that honours it.
    """

    def __init__(
        self,
        idempotency_key: str,
        request: GenerationRequest | None = None,
        message: str = "",
        *,
        reason: str = "",
    ) -> None:
        super().__init__(
            None,
            message
            or (
                "the submission may or may not have created (and billed) a generation: the "
                f"request went out and no answer came back{f' ({reason})' if reason else ''}. "
                f"Its Idempotency-Key is {idempotency_key}. Check the account's usage (the "
                "dashboard, key_info()) for it before sending it again"
            ),
        )
        self.idempotency_key = idempotency_key
        self.request = request

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.idempotency_key, self.request, self.message))


class NotSubmitted(ChuiziError):
    """A batch held this request back (stopped, interrupted): nothing was sent or paid."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class CostLimitExceeded(NotSubmitted):
    """Submitting it would have passed the batch's ``max_cost``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="max_cost")


_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientBalanceError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_for_status(
    status_code: int,
    message: str,
    error_type: str | None = None,
    *,
    code: str | None = None,
    request_id: str | None = None,
) -> APIError:
    """The typed error for an error answer."""
    cls = _STATUS_ERRORS.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else APIError
    return cls(status_code, message, error_type, code=code, request_id=request_id)


def no_status_answer(message: str) -> APIError:
    """The error for a status route whose answers (200) report no status: not the video API's
    route, or not the video API. An ``APIError`` with ``status_code`` 200."""
    return APIError(200, message)
