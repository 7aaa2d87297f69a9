"""Checked by ``mypy --strict`` (CI runs it over ``tests``), never run: the types a user of
``generate_many`` sees, as ``asyncio.gather`` gives them."""

from __future__ import annotations

from typing import assert_type

import chuizi_async as ca


async def default_is_a_list_of_videos(client: ca.Client, prompts: list[str]) -> list[str]:
    requests = [ca.GenerationRequest("google/veo-3.1-fast", p, duration=5) for p in prompts]
    videos = await client.generate_many(requests, concurrency=50)
    assert_type(videos, list[ca.Video])
    explicit: list[ca.Video] = await client.generate_many(requests, return_exceptions=False)
    return [video.url for video in videos + explicit]  # no "BaseException has no attribute"


async def with_exceptions_each_item_may_be_an_error(
    client: ca.Client, requests: list[ca.GenerationRequest]
) -> list[str]:
    results = await client.generate_many(requests, return_exceptions=True)
    assert_type(results, list[ca.Video | BaseException])
    return [r.url for r in results if isinstance(r, ca.Video)]


async def a_bool_known_only_at_run_time_gives_the_union(
    client: ca.Client, requests: list[ca.GenerationRequest], tolerant: bool
) -> None:
    results = await client.generate_many(requests, return_exceptions=tolerant)
    assert_type(results, list[ca.Video | BaseException])
