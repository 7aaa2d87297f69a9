"""The README as a user reads it: every Python block runs as written.

Each block is an excerpt of a complete program in ``examples/`` (checked here, character for
character); ``mypy --strict`` type-checks those programs (``examples`` is in mypy's files, so
the README's snippets are type-checked in CI), and the tests below run them on the simulator.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import chuizi_async as ca
from chuizi_async.testing import FakeChuizi

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _python_blocks(text: str) -> list[str]:
    return [textwrap.dedent(b).strip() for b in re.findall(r"```python\n(.*?)```", text, re.S)]


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"readme_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_python_block_of_the_readme_is_in_an_example() -> None:
    blocks = _python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 6
    sources = [p.read_text(encoding="utf-8") for p in EXAMPLES.glob("*.py")]
    missing = [b.splitlines()[0] for b in blocks if not any(b in source for source in sources)]
    assert missing == [], "README blocks with no complete version in examples/"


async def test_the_service_example_serves_concurrent_callers() -> None:
    service_module = _example("readme_service")
    async with FakeChuizi(speed=1000) as server:
        service = service_module.VideoService(server.client())
        urls = [await service.handler(f"clip {i}") for i in range(3)]
        await service.shutdown()
    assert all(url.endswith(".mp4") for url in urls)
    assert service.client.closed


async def test_the_batch_examples_generate_resume_and_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = _example("readme_batch")
    monkeypatch.chdir(tmp_path)  # the journal and videos/ are relative paths
    requests = [ca.GenerationRequest("google/veo-3.1-fast", f"clip {i}") for i in range(3)]
    async with FakeChuizi(speed=1000) as server, server.client() as client:
        await batch.make_videos(client, batch.PROMPTS)
        out = capsys.readouterr().out
        assert "2 of 3 done" in out and "Content policy violation" in out
        paths = await batch.resumable(client, requests)
        again = await batch.resumable(client, requests)  # from the journal
    assert len(paths) == 3 and paths == again
    assert all(p.is_file() for p in paths)
    assert server.counters.submissions == len(batch.PROMPTS) * 2 + 3  # nothing sent twice


def test_the_configuration_example_shows_the_defaults() -> None:
    example = _example("readme_configuration")
    assert example.policy == ca.PollPolicy()
    default = ca.Client("ck-...")
    for setting in ("timeout", "max_retries", "retry_submissions", "limits", "time_scale"):
        assert getattr(example.client, setting) == getattr(default, setting), setting
    assert example.client.poll_policy == default.poll_policy


def test_the_testing_examples_pass_under_pytest() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
