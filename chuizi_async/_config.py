"""Client configuration checks that keep the key safe: its wrapper, and an https base URL.

Where the key may go is decided in ``_auth``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ._exceptions import InvalidRequest

__all__ = ["Secret", "check_base_url"]

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class Secret:
    """The API key, kept out of every repr, str and log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


def check_base_url(base_url: str, allow_insecure_http: bool) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidRequest(f"base_url must be an https:// URL, not {base_url!r}")
    if parts.scheme == "http" and not allow_insecure_http and parts.hostname not in _LOOPBACK:
        raise InvalidRequest(
            f"base_url {base_url!r} uses plain http to a remote host: https is required to keep "
            "the API key secret (pass allow_insecure_http=True only for a trusted network)"
        )
    return base_url.rstrip("/")
