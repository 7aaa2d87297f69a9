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
    │   ├── APITimeoutError (also TimeoutError)
    │   └── ResponseFormatError               an answer that is not the API's (HTML, bad JSON)
    ├── GenerationError                       about one generation, carries its id
    │   ├── GenerationFailed                  the server reports "failed"
    │   ├── GenerationTimeout (also TimeoutError)
    │   ├── GenerationCancelled               the handle was cancelled locally
    │   └── ClientClosed                      the client closed while it was pending
    └── NotSubmitted                          a batch held this request back (.reason)
        └── CostLimitExceeded                 it would have passed max_cost

``InvalidRequest`` is also raised for a bad ``Client`` configuration (an http base URL to a
remote host, a missing key), so that ``except ValueError`` and ``except ChuiziError`` both work.
"""

from __future__ import annotations

__all__ = [
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
    "error_for_status",
]


class ChuiziError(Exception):
    """The root of every error raised by chuizi_async."""


class InvalidRequest(ChuiziError, ValueError):
    """Refused before sending: the request or configuration cannot be right."""


class APIError(ChuiziError):
    """The server answered with an error status."""

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
) -> APIError:
    """The typed error for an error answer."""
    cls = _STATUS_ERRORS.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else APIError
    return cls(status_code, message, error_type, code=code)
