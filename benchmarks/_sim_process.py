"""The simulator in a process of its own, so the client's CPU is measured alone.

Child side (this file run as a script)::

    python benchmarks/_sim_process.py '{"speed": 100, "rate_limit": {"limit": 60, "window": 1}}'

starts ``FakeChuizi(**settings)``, prints one JSON line ``{"base_url", "api_key",
"media_base_url", "pid"}`` on stdout, then reads commands from stdin, one a line:

* ``dump PATH``: write what the server saw (counters, every generation with its
  ``ready_at``, every request's arrival time) as JSON to ``PATH``, then print ``ok``;
* end of stdin (the parent closed the pipe or died), or SIGTERM: stop serving and exit.

Besides ``FakeChuizi``'s own arguments, the settings take ``"retry_after_whole_seconds":
true``: a 429 of the rate limiter then says ``Retry-After`` in whole seconds, rounded up.

Parent side: :class:`SimulatorProcess`, a context manager around ``subprocess.Popen``.

Clocks: ``ready_at`` and the request times are ``time.monotonic()`` values of the child.
On Linux ``CLOCK_MONOTONIC`` is one system-wide clock, so the parent compares them with its own
``time.monotonic()`` directly (detection lag = parent's resolve time - child's ``ready_at``).
This does not hold on every OS: the benchmarks assume Linux (or macOS, whose monotonic clock
is also system-wide).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["SOCKET_READ_SIZE", "SimulatorInfo", "SimulatorProcess", "main", "steady_socket_reads"]

_STARTUP_TIMEOUT = 20.0
_STOP_TIMEOUT = 5.0


SOCKET_READ_SIZE = 64 * 1024
"""What one socket read asks for in a benchmark process (anyio's and trio's size)."""


def steady_socket_reads() -> None:
    """Make every socket read of this process ask for ``SOCKET_READ_SIZE`` bytes, not 256 KiB.

    asyncio's selector transport reads with ``sock.recv(256 KiB)``. With glibc, whether
    such a read costs an ``mmap``, a page fault, an ``mremap`` and a ``munmap`` depends on
    the heap's layout (python/cpython#85451): on this machine it added ~20 us to every
    request of whichever side was in that state, and a process went in and out of it from
    one repetition to the next. That is the allocator, not the HTTP client: both sides of
    every benchmark run in this process, so both get the same read size, and the
    simulator's process too (its speed is the wall time's floor). A read of 64 KiB is
    served from the heap. Called once, before anything connects.
    """
    from asyncio import selector_events

    selector_events._SelectorSocketTransport.max_size = SOCKET_READ_SIZE  # type: ignore[attr-defined]


# -- child ---------------------------------------------------------------------------------


def _build_server(settings: dict[str, Any]) -> Any:
    from chuizi_async.testing import FakeChuizi, Faults, RateLimit

    settings = dict(settings)
    rate = settings.pop("rate_limit", None)
    faults = settings.pop("faults", None)
    whole_seconds = settings.pop("retry_after_whole_seconds", False)
    if "completion_times" in settings:
        settings["completion_times"] = {
            model: (float(low), float(high))
            for model, (low, high) in settings["completion_times"].items()
        }
    if settings.get("default_completion_time") is not None:
        low, high = settings["default_completion_time"]
        settings["default_completion_time"] = (float(low), float(high))
    server = FakeChuizi(
        rate_limit=RateLimit(**rate) if rate else None,
        faults=Faults(**faults) if faults else None,
        **settings,
    )
    if whole_seconds and rate:
        _retry_after_whole_seconds(server)
    return server


def _retry_after_whole_seconds(server: Any) -> None:
    """Round the rate limiter's ``Retry-After`` up to whole seconds (HTTP's delta-seconds).

    ``FakeChuizi``'s ``RateLimit`` answers a 429 with the exact time until a slot of its
    sliding window frees (``"0.013"``); a gateway speaking HTTP's integer delta-seconds says
    ``Retry-After: 1`` for any wait within a 1 s window, as issue 4 describes. This swaps the
    simulator's (private) limiter for a subclass that does that; it reaches into the
    simulator's internals, so it fails loudly if they change.
    """
    from chuizi_async.testing._errors import ApiError
    from chuizi_async.testing._ratelimit import RateLimiter

    class WholeSeconds(RateLimiter):
        def _rejection(self, window: Any, now: float, message: str) -> ApiError:
            error = super()._rejection(window, now, message)
            wait = error.headers.get("Retry-After")
            if wait is not None:
                error.headers["Retry-After"] = str(max(1, math.ceil(float(wait))))
            return error

    routes: Any = getattr(server, "_routes", None)  # testing._routes.Routes
    if not isinstance(getattr(routes, "limiter", None), RateLimiter):
        raise RuntimeError("FakeChuizi's rate limiter moved: update _retry_after_whole_seconds")
    routes.limiter = WholeSeconds(server.rate_limit)


def _route(method: str, path: str) -> str:
    if method == "POST" and path.endswith("/videos/generations"):
        return "submit"
    if method == "GET" and (path.endswith("/generation") or "/videos/" in path):
        return "status"
    return "other"


def _snapshot(server: Any) -> dict[str, Any]:
    from chuizi_async.testing import FakeChuizi

    assert isinstance(server, FakeChuizi)
    counters = server.counters
    by_id = counters.status_checks_by_id
    return {
        "counters": {
            "requests": counters.requests,
            "submissions": counters.submissions,
            "status_checks": counters.status_checks,
            "generations_created": counters.generations_created,
            "idempotent_replays": counters.idempotent_replays,
            "rate_limited": counters.rate_limited,
            "max_checks_of_one_id": max(by_id.values(), default=0),
        },
        "generations": {
            gen.id: {
                "model": gen.model,
                "prompt": gen.prompt,
                "status": gen.status,
                "submitted_at": gen.submitted_at,
                "ready_at": gen.ready_at,
                "error": gen.error,
            }
            for gen in server.generations.values()
        },
        "requests": [[r.time, _route(r.method, r.path)] for r in server.requests_log],
    }


async def _serve(settings: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with _build_server(settings) as server:
        hello = {
            "base_url": server.base_url,
            "api_key": server.api_key,
            "media_base_url": server.media_base_url,
            "pid": os.getpid(),
        }
        print(json.dumps(hello), flush=True)

        async def commands() -> None:
            while line := (await reader.readline()).decode().strip():
                verb, _, arg = line.partition(" ")
                if verb == "dump":
                    text = json.dumps(_snapshot(server))
                    await asyncio.to_thread(Path(arg).write_text, text)
                    print("ok", flush=True)
                else:
                    print(f"error: unknown command {verb!r}", flush=True)
            stop.set()  # end of stdin: the parent is done (or gone)

        async with asyncio.TaskGroup() as tg:
            reading = tg.create_task(commands())
            await stop.wait()
            reading.cancel()


def main(argv: list[str] | None = None) -> None:
    """Serve the simulator described by the JSON settings in ``argv[0]``."""
    args = sys.argv[1:] if argv is None else argv
    settings = json.loads(args[0]) if args else {}
    steady_socket_reads()
    asyncio.run(_serve(settings))


# -- parent --------------------------------------------------------------------------------


class SimulatorInfo:
    """Where the child's simulator listens."""

    def __init__(self, hello: dict[str, Any]) -> None:
        self.base_url: str = hello["base_url"]
        self.api_key: str = hello["api_key"]
        self.media_base_url: str = hello["media_base_url"]
        self.pid: int = hello["pid"]


class SimulatorProcess:
    """Start ``FakeChuizi(**settings)`` in a child process; ``dump()`` what it saw.

    Use it outside the event loop being measured (its calls block)::

        with SimulatorProcess({"speed": 100}) as sim:
            asyncio.run(work(sim.info.base_url, sim.info.api_key))
            seen = sim.dump()
    """

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self._process: subprocess.Popen[str] | None = None
        # the child's stderr, shown if it fails; lives as long as this object (closed in close())
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self._info: SimulatorInfo | None = None

    @property
    def info(self) -> SimulatorInfo:
        assert self._info is not None, "the simulator is not started"
        return self._info

    def __enter__(self) -> SimulatorProcess:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), json.dumps(self.settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._info = SimulatorInfo(json.loads(self._read_line("start")))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _read_line(self, what: str) -> str:
        process = self._process
        assert process is not None and process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=_STARTUP_TIMEOUT)
            self._stderr.seek(0)
            raise RuntimeError(
                f"simulator process failed ({what}), exit {process.returncode}:\n"
                + self._stderr.read()[-2000:]
            )
        return line

    def dump(self) -> dict[str, Any]:
        """What the simulator saw so far (see the module docstring)."""
        process = self._process
        assert process is not None and process.stdin is not None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "dump.json"
            process.stdin.write(f"dump {path}\n")
            process.stdin.flush()
            answer = self._read_line("dump").strip()
            if answer != "ok":
                raise RuntimeError(f"simulator dump failed: {answer}")
            result: dict[str, Any] = json.loads(path.read_text())
            return result

    def close(self) -> None:
        """Close stdin (the child exits), escalating to SIGTERM and SIGKILL if it hangs."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._stderr.close()


if __name__ == "__main__":
    main()
