"""The error answers of the simulated API."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

__all__ = ["DEFAULT_CODES", "ApiError", "error_response"]

DEFAULT_CODES: Mapping[int, str] = {
    400: "invalid_request",
    401: "invalid_api_key",
    402: "insufficient_quota",
    403: "permission_denied",
    404: "not_found",
    429: "rate_limit_exceeded",
}
"""The ``code`` of an error answer that names none more precisely."""


def error_response(
    status: int,
    message: str,
    type: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Render the API's error body, ``{"error": {"message", "type", "code"}}``.

    Without a ``code``, the documented one of the status (``invalid_api_key``,
    ``insufficient_quota``, ``rate_limit_exceeded``...), else the ``type``.
    """
    code = code or DEFAULT_CODES.get(status) or type
    body = {"error": {"message": message, "type": type, "code": code}}
    return web.json_response(body, status=status, headers=headers)


class ApiError(Exception):
    """Raised inside the simulator to answer a request with an API error."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def to_response(self) -> web.Response:
        """Render this error as an aiohttp response."""
        return error_response(
            self.status, self.message, self.type, code=self.code, headers=self.headers
        )
