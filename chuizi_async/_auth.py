"""The headers of every request, and the one rule on where the API key may go.

The key goes only to the API's own origin: the scheme, host and port of ``base_url``. It never
goes to the media host, nor to a redirect that leaves the API; the ``X-Request-Id`` we make up
follows the same rule (it is the API's, not the media host's).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs
from multidict import CIMultiDict

from ._config import Secret
from ._transport import REQUEST_ID_HEADER

__all__ = ["USER_AGENT", "AuthHeaders", "origin"]

USER_AGENT = "chuizi-async/0.1.0"

Origin = tuple[str, str, int | None]

_COMMON = {"Accept": "application/json", "User-Agent": USER_AGENT}  # every request's


def origin(url: str) -> Origin:
    """``(scheme, host, port)`` of ``url``: the host lowercased, the default port filled in."""
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


@attrs.frozen
class AuthHeaders:
    """Builds each request's headers from the client's ``base_url`` and its key.

    >>> auth = AuthHeaders("https://api.chuizi.ai/v1", Secret("ck-..."))
    >>> "Authorization" in auth.headers_for("https://media.example/v.mp4", has_body=False,
    ...                                     request_id="req_0")
    False
    """

    base_url: str
    _key: Secret = attrs.field(repr=False)
    _origin: Origin = attrs.field(init=False, repr=False)
    _api_prefix: str = attrs.field(init=False, repr=False)
    _api_headers: CIMultiDict[str] = attrs.field(init=False, repr=False)  # holds the key

    @_origin.default
    def _base_origin(self) -> Origin:
        return origin(self.base_url)

    @_api_prefix.default
    def _base_prefix(self) -> str:
        return self.base_url.rstrip("/") + "/"

    @_api_headers.default
    def _base_headers(self) -> CIMultiDict[str]:
        return CIMultiDict({**_COMMON, "Authorization": f"Bearer {self._key.reveal()}"})

    def is_api(self, url: str) -> bool:
        """Whether ``url`` is on the API's own origin, the only place the key may go."""
        return url.startswith(self._api_prefix) or origin(url) == self._origin

    def headers_for(self, url: str, has_body: bool, request_id: str) -> CIMultiDict[str]:
        """The headers of one request to ``url``, fresh for the caller to extend: a
        case-insensitive multidict, as aiohttp takes them (a ``dict`` it would copy into one).

        ``Authorization`` and ``X-Request-Id`` only if ``url`` is on the API's origin;
        ``Content-Type`` only with a (JSON) body.
        """
        if url.startswith(self._api_prefix) or origin(url) == self._origin:
            headers = self._api_headers.copy()
            headers[REQUEST_ID_HEADER] = request_id
        else:
            headers = CIMultiDict(_COMMON)
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers
