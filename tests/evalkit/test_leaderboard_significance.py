"""`evalkit leaderboard --significance`: each task's best run of ours, and whether each other run of ours
is significantly below it (paired permutation test over problems), in every format."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from evalkit.report import build_leaderboard, load_runs, render_leaderboard
from tests.evalkit.compare_helpers import cli
from tests.evalkit.test_leaderboard import _rows, parse_markdown
from tests.evalkit.test_report_fixtures import write_run

BEST = [4, 4, 3, 3, 2, 2, 4, 4, 3, 3]  # correct samples of 4 on ten problems: 80%


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("significance")
    write_run(root, model="org/best", correct=_rows(BEST))
    # One problem one sample lower: a single nonzero difference, exact p = 2/2 = 1 -> tied.
    write_run(root, model="org/close", correct=_rows([3, *BEST[1:]]))
    # Lower on all ten problems: exact p = 2 / 2**10 -> below.
    write_run(root, model="org/far", correct=_rows([1] * 10))
    # Other problems (five of them): not compared.
    write_run(root, model="org/short", correct=_rows([4] * 5))
    # Incomplete (one sample missing): not a result, not compared.
    write_run(root, model="org/partial", correct=[[True] * 4] * 9 + [[True] * 3])
    # The only run of its task: nothing to compare with.
    write_run(root, model="org/best", task="aime25", correct=_rows([2] * 10))
    return root


def _cells(root: Path, significance: bool) -> dict[str, dict[str, str]]:
    board = build_leaderboard(load_runs([root]), None, significance=significance)
    header, body = parse_markdown(render_leaderboard(board, "md"))
    return {row[0]: dict(zip(header, row, strict=True)) for row in body}


def test_markdown_marks_best_tied_below_and_leaves_the_rest(root: Path) -> None:
    cells = _cells(root, significance=True)
    assert cells["org/best"]["aime24"].endswith("n=4 ★")
    assert cells["org/close"]["aime24"].endswith("n=4 ≈")
    assert cells["org/far"]["aime24"].endswith("n=4 ▼")
    assert cells["org/short"]["aime24"].endswith("n=4")  # other problems: unmarked
    assert cells["org/partial"]["aime24"].endswith("*incomplete*")
    assert cells["org/best"]["aime25"].endswith("n=4")  # alone on its task
    plain = _cells(root, significance=False)
    assert all(not c.endswith(("★", "≈", "▼")) for row in plain.values() for c in row.values())


def test_csv_carries_the_verdict_and_the_exact_p(root: Path) -> None:
    board = build_leaderboard(load_runs([root]), None, significance=True)
    records = {r["model"]: r for r in csv.DictReader(io.StringIO(render_leaderboard(board, "csv")))}
    assert [records[m]["aime24_vs_best"] for m in ("org/best", "org/close", "org/far", "org/short")] == [
        "best", "tied", "below", "",
    ]  # fmt: skip
    assert float(records["org/close"]["aime24_vs_best_p"]) == 1.0
    assert float(records["org/far"]["aime24_vs_best_p"]) == 2 / 1024  # not rounded away
    assert "aime25_vs_best" not in records["org/best"]  # no task column without a comparison
    plain = build_leaderboard(load_runs([root]), None)
    assert "vs_best" not in render_leaderboard(plain, "csv")


def test_html_latex_and_legend(root: Path) -> None:
    board = build_leaderboard(load_runs([root]), None, significance=True)
    page, latex, markdown = (render_leaderboard(board, fmt) for fmt in ("html", "latex", "md"))
    assert "n=4 ★" in page and "n=4 ▼" in page and "significantly below it" in page
    assert r"n=4 $\star$" in latex and r"n=4 $\downarrow$" in latex and r"n=4 $\approx$" in latex
    assert "paired permutation test over problems" in markdown


def test_cli_flag(root: Path) -> None:
    code, out, err = cli("leaderboard", str(root), "--significance", "--reference", "none")
    assert code == 0, err
    assert "n=4 ▼" in out and "★" in out
    code, out, _ = cli("leaderboard", str(root), "--reference", "none")
    assert code == 0 and "★" not in out
