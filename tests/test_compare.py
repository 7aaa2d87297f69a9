"""``python -m benchmarks.compare``: two trees side by side, summarized per figure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks import compare
from benchmarks.scenarios import SCENARIOS, Repetition

ROOT = Path(__file__).resolve().parent.parent
in_git = pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")


def _rep(ours: float, base: float) -> Repetition:
    return {
        "ours": {"cpu_us_per_check": ours, "wall_s": ours / 1000, "checks": 300.0},
        "baseline": {"cpu_us_per_check": base, "wall_s": base / 1000, "checks": 300.0},
        "info": {"n": 300.0},
    }


def test_the_summary_gives_each_trees_median_ratio_its_middle_half_and_the_targets_count() -> None:
    before = [_rep(130, 100), _rep(140, 100), _rep(120, 100), _rep(160, 100), _rep(150, 100)]
    after = [_rep(110, 100), _rep(112, 100)]
    text = compare.summarize(SCENARIOS["check-cpu"], {"before": before, "after": after})
    assert "repetitions: before: 5, after: 2" in text
    row = next(line for line in text.splitlines() if line.startswith("client CPU per check"))
    # before: ratios 1.2 to 1.6 -> median 1.4, middle half 1.3-1.5; none within 1.15x
    assert "1.400x (1.30-1.50); 140 / 100; met 0/5" in row
    # after: 1.10 and 1.12 -> 1.11, both within the 1.15x target
    assert "1.110x (1.10-1.12); 111 / 100; met 2/2" in row


def test_a_figure_no_tree_has_is_left_out_and_one_tree_lacks_shows_a_dash() -> None:
    cpu_only: Repetition = {
        "ours": {"cpu_us_per_check": 130.0},
        "baseline": {"cpu_us_per_check": 100.0},
    }
    text = compare.summarize(
        SCENARIOS["check-cpu"], {"before": [cpu_only], "after": [_rep(120, 100)]}
    )
    assert "status checks" in text  # the after tree has it
    row = next(line for line in text.splitlines() if line.startswith("status checks"))
    assert row.split()[2] == "-"  # the before tree has not
    text = compare.summarize(SCENARIOS["check-cpu"], {"before": [cpu_only]})
    assert "wall time" not in text and "status checks" not in text


@in_git
def test_a_revision_is_exported_as_a_folder_of_its_files(tmp_path: Path) -> None:
    tree = compare.export("HEAD", tmp_path)
    assert (tree / "chuizi_async" / "__init__.py").is_file()
    assert tree.is_relative_to(tmp_path)
    assert compare.export(str(ROOT), tmp_path) == ROOT  # a folder is used as it is


def test_neither_a_folder_nor_a_revision_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="neither a folder nor a git revision"):
        compare.export("no-such-revision-or-folder", tmp_path)


@in_git
def test_two_trees_run_in_turn_and_are_summarized(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["HEAD", "--quick", "--only", "check-cpu", "--rounds", "1", "--repeat", "1"]
    assert compare.main(argv) == 0
    out = capsys.readouterr()
    assert "## check-cpu (repetitions: before: 1, after: 1)" in out.out
    assert "client CPU per check (us)" in out.out
    assert "round 1/1: before" in out.err and "round 1/1: after" in out.err


def test_a_run_that_writes_nothing_fails_even_if_an_earlier_runs_file_is_there(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "chuizi_async", tree / "chuizi_async")
    (tree / "benchmarks").mkdir()
    (tree / "benchmarks" / "__init__.py").write_text("")
    (tree / "benchmarks" / "__main__.py").write_text("raise SystemExit('broken')\n")
    out = tmp_path / "kept" / "before-1.json"
    out.parent.mkdir()
    out.write_text('{"scenarios": {}}')  # what an earlier run with --keep left
    with pytest.raises(SystemExit, match="the benchmarks failed"):
        compare.run_once(tree, ["check-cpu"], 1, out, quick=True)
    assert not out.exists()
