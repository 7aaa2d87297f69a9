"""Run the benchmarks: ``python -m benchmarks`` or ``python benchmarks/run.py``.

::

    python -m benchmarks                    # every scenario, 3 repetitions
    python -m benchmarks --quick            # small sizes, a smoke check of a few seconds
    python -m benchmarks --only core-300 --repeat 5 --json /tmp/core.json

Prints, per scenario, the median of each figure for our client and its baseline, their
ratio, and whether each target is met (in how many repetitions); writes every repetition's
raw figures to ``--json`` (default ``benchmarks/results.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._sim_process import SOCKET_READ_SIZE, steady_socket_reads
from benchmarks.scenarios import SCENARIOS, Repetition, Scenario

__all__ = ["main"]

_HERE = Path(__file__).resolve().parent


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import aiohttp

    import chuizi_async

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=_HERE,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "chuizi_async": chuizi_async.__version__,
        "aiohttp": aiohttp.__version__,
        "commit": commit,
        "socket_read_bytes": SOCKET_READ_SIZE,
    }


def _median(reps: Sequence[Repetition], side: str, key: str) -> float | None:
    values = [r[side][key] for r in reps if key in r.get(side, {})]
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else None


def _fmt(fmt: str, value: float | None) -> str:
    return "-" if value is None else fmt.format(value)


def render(scenario: Scenario, reps: Sequence[Repetition]) -> str:
    """The table of one scenario: medians, ratio, targets."""
    header = ("", "ours", scenario.baseline, "ours/base", "target", "")
    rows: list[tuple[str, ...]] = [header]
    for metric in scenario.metrics:
        ours = _median(reps, "ours", metric.key)
        base = _median(reps, "baseline", metric.key)
        if ours is None and base is None:
            continue
        ratio = "-"
        if ours is not None and base:
            ratio = f"{ours / base:.2f}x"
        verdict = ""
        if metric.target is not None:
            met = sum(
                1
                for r in reps
                if metric.key in r["ours"]
                and metric.target(r["ours"][metric.key], r["baseline"].get(metric.key))
            )
            verdict = (
                f"met {met}/{len(reps)}" if met == len(reps) else f"MISSED (met {met}/{len(reps)})"
            )
        rows.append(
            (
                metric.label,
                _fmt(metric.fmt, ours),
                _fmt(metric.fmt, base),
                ratio,
                metric.goal,
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:4], widths[1:4], strict=True)]
        cells += [row[4].ljust(widths[4]), row[5]]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    info = reps[0].get("info", {}) if reps else {}
    params = ", ".join(f"{k}={v:g}" for k, v in info.items())
    title = f"## {scenario.name} ({params}; medians of {len(reps)})\n{scenario.summary}"
    return title + "\n\n" + "\n".join(lines)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="scenario")
    parser.add_argument(
        "--json", type=Path, default=_HERE / "results.json", help="where to write raw figures"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = args.only or list(SCENARIOS)
    steady_socket_reads()  # both sides alike: see there

    about = machine()
    print(
        f"machine: {about['platform']}, {about['cpu']}, {about['cpu_count']} CPUs, "
        f"Python {about['python']}, aiohttp {about['aiohttp']}, "
        f"chuizi_async {about['chuizi_async']} ({about['commit']}), "
        f"socket reads of {SOCKET_READ_SIZE // 1024} KiB"
    )
    report: dict[str, Any] = {
        "machine": about,
        "argv": sys.argv,
        "quick": args.quick,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "scenarios": {},
    }
    failed = False
    for name in names:
        scenario = SCENARIOS[name]
        reps: list[Repetition] = []
        entry: dict[str, Any] = {"summary": scenario.summary, "repetitions": reps}
        report["scenarios"][name] = entry
        for rep in range(args.repeat):
            print(f"running {name} {rep + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
            try:
                reps.append(scenario.run(args.quick, rep))
            except Exception:  # report it, go on with the other scenarios
                failed = True
                entry["error"] = traceback.format_exc()
                print(f"\n## {name}: FAILED\n{entry['error']}", flush=True)
                break
        if reps and "error" not in entry:
            print()
            print(render(scenario, reps), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(_finite(report), indent=1) + "\n")
    print(f"\nraw figures: {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
