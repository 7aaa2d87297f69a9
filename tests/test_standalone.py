"""The simulator as a server of its own (``python -m chuizi_async.testing``), and the helpers
that match a client to it (``server.client()``, the ``chuizi_client`` fixture)."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.text import TextReceiveStream

import chuizi_async as ca
from chuizi_async._cli import main
from chuizi_async.testing import FakeChuizi

ROOT = Path(__file__).resolve().parent.parent


async def test_standalone_simulator_serves_any_client_until_sigterm() -> None:
    command = [sys.executable, "-m", "chuizi_async.testing", "--port", "0", "--json"]
    command += ["--speed", "1000", "--seed", "3"]
    async with await anyio.open_process(command, cwd=ROOT) as process:
        assert process.stdout is not None
        lines = TextReceiveStream(BufferedByteReceiveStream(process.stdout))
        first = ""
        while "\n" not in first:
            first += await lines.receive()
        hello = json.loads(first.splitlines()[0])
        assert hello["base_url"].startswith("http://127.0.0.1:")
        assert hello["api_key"].startswith("ck-")
        api_key, base_url = hello["api_key"], hello["base_url"]
        async with ca.Client(api_key, base_url=base_url, time_scale=1000) as client:
            video = await client.generate("google/veo-3.1-fast", "a cat watching rain")
            assert video.url.startswith(hello["media_base_url"])
            with pytest.raises(ca.GenerationFailed, match="Content policy"):
                await client.generate("google/veo-3.1-fast", "a forbidden scene")
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(10):
            assert await process.wait() == 0  # a clean stop, not a kill


def test_simulate_command_shares_the_standalone_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in ("--port", "--speed", "--dialect", "--rate-limit", "--faults"):
        assert option in help_text
    assert main(["simulate", "--faults", "nonsense=0.1"]) == 2
    assert "unknown fault 'nonsense'" in capsys.readouterr().err


async def test_server_client_is_matched_to_the_simulator_clock() -> None:
    async with FakeChuizi(speed=1000) as server, server.client() as client:
        assert client.base_url == server.base_url
        assert client.time_scale == 1000
        video = await client.generate("google/veo-3.1-fast", "a cat")
        assert video.id in server.generations


async def test_a_default_simulator_fails_forbidden_prompts_like_the_cli() -> None:
    async with FakeChuizi(speed=1000) as server, server.client() as client:
        with pytest.raises(ca.GenerationFailed):
            await client.generate("google/veo-3.1-fast", "something forbidden")
    async with FakeChuizi(speed=1000, fail_pattern=None) as server, server.client() as client:
        assert (await client.generate("google/veo-3.1-fast", "something forbidden")).url


async def test_chuizi_client_fixture_generates_on_the_simulator(
    chuizi_client: ca.Client, chuizi_server: FakeChuizi
) -> None:
    video = await chuizi_client.generate("google/veo-3.1-fast", "a cat")
    assert chuizi_server.generations[video.id].status == "completed"
