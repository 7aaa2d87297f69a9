"""``python -m benchmarks.compare BEFORE [AFTER]``: two trees, run after run, in one sitting.

A ratio to the baseline measured once moves with the machine's hour by more than a change of
a few percent does (``benchmarks/README.md``, ninth and tenth passes): compare trees side by
side instead. This runs the same scenarios in both trees in turn, ``--rounds`` times
(before, after, then after, before: neither always on the warmer machine), each run
``--repeat`` repetitions in a process of its own, and prints for every figure of each tree the
median of the per-repetition ratios to the baseline with its middle half, the medians of
both sides, and how many repetitions met the figure's target.

BEFORE and AFTER are folders or git revisions of this repository (exported with ``git
archive``); AFTER is this working tree unless given::

    python -m benchmarks.compare HEAD~3 --only submit-5000 --only check-cpu --rounds 10
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Metric
from benchmarks.scenarios import SCENARIOS, Repetition, Scenario

__all__ = ["check_imports_own_package", "export", "main", "run_once", "summarize"]

_ROOT = Path(__file__).resolve().parent.parent
_DEFAULT_SCENARIOS = ("check-cpu", "submit-5000")


def export(spec: str, into: Path) -> Path:
    """The folder of ``spec``: itself if it is a folder, else the git revision of this
    repository it names, exported into a new folder below ``into``."""
    path = Path(spec)
    if path.is_dir():
        return path.resolve()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", spec], cwd=_ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise SystemExit(f"{spec!r} is neither a folder nor a git revision of {_ROOT}")
    target = Path(tempfile.mkdtemp(prefix="tree-", dir=into))
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


def _env(tree: Path) -> dict[str, str]:
    """The environment a run in ``tree`` imports the tree's own package with."""
    return {**os.environ, "PYTHONPATH": str(tree)}


def check_imports_own_package(tree: Path) -> None:
    """Refuse a tree whose runs would import ``chuizi_async`` from elsewhere (an install
    that shadows ``PYTHONPATH``): two trees would silently measure one package."""
    found = subprocess.run(
        [sys.executable, "-c", "import chuizi_async; print(chuizi_async.__file__)"],
        cwd=tree,
        env=_env(tree),
        capture_output=True,
        text=True,
        check=True,
    )
    package = Path(found.stdout.strip()).resolve()
    if not package.is_relative_to(tree):
        raise SystemExit(f"{tree}: imports chuizi_async from {package}, not from the tree")


def run_once(tree: Path, names: Sequence[str], repeat: int, out: Path, quick: bool) -> None:
    """One ``python -m benchmarks`` of ``names`` in ``tree``, its raw figures to ``out``."""
    out.unlink(missing_ok=True)  # a file left by an earlier run (--keep) must not pass for this one
    command = [sys.executable, "-m", "benchmarks", "--repeat", str(repeat), "--json", str(out)]
    command += [f"--only={name}" for name in names] + (["--quick"] if quick else [])
    done = subprocess.run(
        command, cwd=tree, env=_env(tree), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        if not out.exists():
            raise SystemExit(f"{tree}: the benchmarks failed\n{done.stdout}{done.stderr}")
        # a scenario failed (the others ran): its repetitions of this run are left out
        print(f"{tree}: a scenario FAILED, see {out}\n{done.stdout[-2000:]}", file=sys.stderr)


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    low, middle, high = statistics.quantiles(values, n=4, method="inclusive")
    return middle, low, high


def _cell(metric: Metric, reps: Sequence[Repetition]) -> str:
    key = metric.key
    pairs = [
        (rep["ours"][key], rep["baseline"][key])
        for rep in reps
        if key in rep["ours"] and rep["baseline"].get(key)
    ]
    if not pairs:
        return "-"
    median, low, high = _quartiles([ours / base for ours, base in pairs])
    ours = statistics.median(p[0] for p in pairs)
    base = statistics.median(p[1] for p in pairs)
    text = f"{median:.3f}x ({low:.2f}-{high:.2f}); {ours:.4g} / {base:.4g}"
    if metric.target is not None:
        met = sum(1 for ours, base in pairs if metric.target(ours, base))
        text += f"; met {met}/{len(pairs)}"
    return text


def summarize(scenario: Scenario, trees: Mapping[str, Sequence[Repetition]]) -> str:
    """Per figure with both sides, per tree: the median ratio (middle half); ours / baseline
    medians; the target's count."""
    count = ", ".join(f"{name}: {len(reps)}" for name, reps in trees.items())
    lines = [f"## {scenario.name} (repetitions: {count})", scenario.summary, ""]
    rows = [("", *trees)]
    for metric in scenario.metrics:
        cells = tuple(_cell(metric, reps) for reps in trees.values())
        if any(cell != "-" for cell in cells):
            rows.append((metric.label, *cells))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _repetitions(path: Path, name: str) -> list[Repetition]:
    report: dict[str, Any] = json.loads(path.read_text())
    entry = report["scenarios"].get(name, {})
    return [] if "error" in entry else list(entry.get("repetitions", []))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare", description=__doc__.split("\n")[0]
    )
    parser.add_argument("before", help="a folder or a git revision")
    parser.add_argument("after", nargs="?", default=str(_ROOT), help="default: this tree")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each tree (default 5)")
    parser.add_argument("--repeat", type=int, default=4, help="repetitions a run (default 4)")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="scenario")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    parser.add_argument("--keep", type=Path, help="a folder for every run's raw figures")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.repeat < 1:
        parser.error("--rounds and --repeat must be at least 1")
    names = args.only or list(_DEFAULT_SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="chuizi-compare-") as scratch:
        where = args.keep or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        trees = {
            "before": export(args.before, Path(scratch)),
            "after": export(args.after, Path(scratch)),
        }
        for tree in trees.values():
            check_imports_own_package(tree)
        runs: dict[str, list[Path]] = {label: [] for label in trees}
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for label in order:
                print(f"round {round_ + 1}/{args.rounds}: {label} ...", file=sys.stderr, flush=True)
                out = where / f"{label}-{round_ + 1}.json"
                run_once(trees[label], names, args.repeat, out, args.quick)
                runs[label].append(out)
        print(f"before: {args.before}  after: {args.after}")
        for name in names:
            reps = {
                label: [r for p in paths for r in _repetitions(p, name)]
                for label, paths in runs.items()
            }
            print()
            print(summarize(SCENARIOS[name], reps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
