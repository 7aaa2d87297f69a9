"""URLs made for yarl: quoted ones sent exactly as given, split as yarl splits them."""

from __future__ import annotations

import gc

import pytest
import yarl

from chuizi_async._urls import URLCache, redact, yarl_url


@pytest.mark.parametrize(
    ("url", "already_quoted"),
    [
        ("https://api.chuizi.ai/v1/generation?id=gen-506ddee17c3879c4", True),
        ("https://cdn.example/v/a%20b.mp4?sig=x~y&t=1", True),
        ("https://cdn.example/v/[x]@!$&'()*+,;=", True),
        ("https://cdn.example/v/a b.mp4", False),  # a space
        ("https://cdn.example/v/caf\u00e9.mp4", False),  # not ASCII
        ("https://cdn.example/v/100%.mp4", False),  # a % that starts no escape
        ("https://cdn.example/v/a%2.mp4", False),
        ("https://cdn.example/v/a%zz.mp4", False),
        ('https://cdn.example/v/"a".mp4', False),
        ("https://cdn.example/v/a^b|c.mp4", False),
    ],
)
def test_only_urls_already_quoted_skip_yarls_encoding(url: str, already_quoted: bool) -> None:
    sent = yarl_url(url)
    if already_quoted:
        assert isinstance(sent, yarl.URL) and str(sent) == url  # sent exactly as given
    else:
        assert sent == url  # left to yarl, which encodes what needs it
        assert str(yarl.URL(url)) != url


@pytest.mark.parametrize(
    "url",
    [
        "https://api.chuizi.ai/v1/generation?id=gen-506ddee17c3879c4",
        "http://127.0.0.1:8080/v1/videos/gen-1",
        "https://user:pw@cdn.example:443/v/a.mp4?sig=a?b&t=/x",
        "https://cdn.example/v/a.mp4#frag",  # a fragment: yarl splits it
        "https://cdn.example?x=/y",  # the query before any path
        "https://[::1]:8080/v1/generation?id=x",  # an IPv6 literal
        "HTTPS://cdn.example/v/a.mp4",  # a scheme yarl lowercases
        "ftp://cdn.example/v/a.mp4",
        "https://cdn.example",
        "https:///v/a.mp4",
    ],
)
def test_a_quoted_url_is_split_as_yarl_splits_it(url: str) -> None:
    sent, expected = yarl_url(url), yarl.URL(url, encoded=True)
    assert isinstance(sent, yarl.URL)
    parts = ("scheme", "raw_authority", "raw_path", "raw_query_string", "raw_fragment")
    assert [getattr(sent, p) for p in parts] == [getattr(expected, p) for p in parts]
    assert sent == expected and str(sent) == str(expected)


def test_a_url_without_a_query_is_made_once_and_one_with_a_query_each_time() -> None:
    urls = URLCache(size=4)
    route = "https://api.chuizi.ai/v1/videos/generations"
    assert urls.get(route) is urls.get(route) and str(urls.get(route)) == route
    check = "https://api.chuizi.ai/v1/generation?id=gen-1"
    assert str(urls.get(check)) == check and len(urls) == 1  # a status check's: not kept
    assert urls.get("https://cdn.example/a b.mp4") == "https://cdn.example/a b.mp4"  # to yarl


def test_urls_with_a_query_on_a_known_base_are_sent_as_made_afresh() -> None:
    urls = URLCache(size=4)
    base = "https://api.chuizi.ai/v1/generation"
    queries = ["id=gen-1", "id=gen-2", "id=a b", "id=100%", "id=caf\u00e9", "id=x#frag", "id=%41"]
    queries += ["id=a[1]", "id=a-._~!$'()*+,;=:@/?&b=c"]
    for query in queries * 2:  # the second time round, from the base split before
        url = f"{base}?{query}"
        sent, fresh = urls.get(url), yarl_url(url)
        assert type(sent) is type(fresh) and sent == fresh and str(sent) == str(fresh)
    assert len(urls) == 0  # none of them kept


def test_a_status_checks_url_is_held_by_no_cache_once_sent() -> None:
    urls = URLCache(size=4)
    base = "https://api.chuizi.ai/v1/generation"
    urls.get(f"{base}?id=gen-0")  # its base, made once
    sent = urls.get(f"{base}?id=gen-1")
    assert str(sent) == f"{base}?id=gen-1"
    # freed with its request, not kept for the garbage collector's young runs to walk
    assert gc.get_referrers(sent) == []


def test_the_url_cache_keeps_at_most_its_size() -> None:
    urls = URLCache(size=4)
    made = [urls.get(f"https://api.chuizi.ai/v1/videos/gen-{i}") for i in range(10)]
    assert [str(u) for u in made] == [f"https://api.chuizi.ai/v1/videos/gen-{i}" for i in range(10)]
    assert len(urls) <= 4


def test_redact_drops_the_query_string() -> None:
    assert redact("https://api.chuizi.ai/v1/generation?id=gen-1&x=y") == (
        "https://api.chuizi.ai/v1/generation"
    )
    assert (
        redact("https://api.chuizi.ai/v1/videos/gen-1") == "https://api.chuizi.ai/v1/videos/gen-1"
    )
