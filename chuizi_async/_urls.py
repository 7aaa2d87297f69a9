"""The URLs a transport sends to, made for yarl with as little of yarl's Python as may be.

The API's own URLs are built already quoted (``_status`` quotes a generation's id): a URL of
RFC 3986's characters and the common shape is split here and handed to yarl as encoded,
which spares a request yarl's general parser; any other URL is left to yarl to encode.
``redact`` is what a log line or an error shows of a URL.
"""

from __future__ import annotations

import re
from typing import TypeVar

import yarl

__all__ = ["URLCache", "redact", "yarl_url"]

_T = TypeVar("_T")

# the characters RFC 3986 allows in a URL, "%" aside; deleted by bytes.translate, a C loop
# (a regular expression over every character cost a status check ~2% of its CPU)
_URL_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;="
# what yarl's query quoter leaves as it is: a query of these alone is sent as written
_QUERY_AS_IS = _URL_CHARS.translate(None, b"#[]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a % that starts no escape
_WEB_SCHEMES = frozenset({"http", "https"})


def _quoted(text: str) -> bool:
    """Whether ``text`` is ASCII of RFC 3986's characters, each ``%`` starting an escape."""
    if not text.isascii():
        return False
    rest = text.encode().translate(None, _URL_CHARS)
    return not rest or (not rest.strip(b"%") and _BAD_ESCAPE.search(text) is None)


def _split(url: str) -> tuple[str, str, str, str] | None:
    """Scheme, authority, path and query of a quoted URL of the common shape
    (``http(s)://host/path?query``, no fragment), split as yarl splits it; else None."""
    scheme, sep, tail = url.partition("://")
    slash = tail.find("/")
    if sep and slash > 0 and scheme in _WEB_SCHEMES and "#" not in tail:
        authority = tail[:slash]
        if "?" not in authority and "[" not in authority and "]" not in authority:
            path, _, query = tail[slash:].partition("?")
            return scheme, authority, path, query
    return None


def _build(scheme: str, authority: str, path: str, query: str) -> yarl.URL:
    """The yarl URL of quoted parts (``_split``'s), as they are."""
    return yarl.URL.build(
        scheme=scheme, authority=authority, path=path, query_string=query, encoded=True
    )


def yarl_url(url: str) -> yarl.URL | str:
    """The URL as yarl would send it; the API's own URLs are built quoted, so skip a step.

    A character outside RFC 3986, or a ``%`` that starts no escape, leaves the URL to yarl
    to encode. A quoted URL is split as yarl splits it: the common shape here (``_split``),
    as yarl's general splitter costs a request ~50 lines of Python; any other by yarl.
    """
    if not _quoted(url):
        return url
    parts = _split(url)
    return yarl.URL(url, encoded=True) if parts is None else _build(*parts)


def _plain_query(query: str) -> bool:
    """Whether yarl's ``with_query`` sends ``query`` as written: no ``%`` to encode again."""
    return query.isascii() and not query.encode().translate(None, _QUERY_AS_IS)


class URLCache:
    """yarl URLs of the transport's query-less URLs (the submission route, the account's),
    made once: splitting and building one costs a request ~35 lines of Python. A URL with a
    query (a status check's id) is new each time: its part before the ``?`` is made once
    and kept, the query added to it. At most ``size`` of each are kept.

    A status check's URL is made with ``with_query``, which yarl does not cache: a URL made
    by ``URL.build`` stays in yarl's cache for 128 more, one object a check more for every
    young collection of the garbage collector to walk, and to promote."""

    __slots__ = ("_bases", "_size", "_urls")

    def __init__(self, size: int = 64) -> None:
        self._urls: dict[str, yarl.URL | str] = {}
        self._bases: dict[str, yarl.URL] = {}  # a URL's part before the "?"
        self._size = size

    def __len__(self) -> int:
        return len(self._urls)

    def get(self, url: str) -> yarl.URL | str:
        found = self._urls.get(url)
        if found is not None:
            return found
        base, sep, query = url.partition("?")
        if not sep:
            return self._keep(self._urls, url, yarl_url(url))
        known = self._bases.get(base)
        if known is not None and _plain_query(query):
            return known.with_query(query)
        made = yarl_url(url)
        if isinstance(made, yarl.URL) and (parts := _split(url)) is not None:
            self._keep(self._bases, base, _build(*parts[:3], ""))  # its shape is the common one
        return made

    def _keep(self, cache: dict[str, _T], key: str, value: _T) -> _T:
        if len(cache) >= self._size:
            cache.clear()
        cache[key] = value
        return value


def redact(url: str) -> str:
    """The URL without a query string (ids only; keys never travel in URLs, but be safe)."""
    return url.split("?", 1)[0]
