"""The live display: the Pass@1 estimate's answer matching, plain log lines, and the rich bar on a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from evalkit.progress import RunProgress, last_boxed, quick_correct, summary_table


@pytest.mark.parametrize(
    ("text", "boxed"),
    [
        ("so \\boxed{42}", "42"),
        ("\\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # last box, nested braces
        ("<think>\\boxed{7}</think> done", None),  # only after the thinking
        ("<think>\\boxed{7}</think> \\boxed{8}", "8"),
        ("\\boxed{unclosed", None),
        ("no box", None),
    ],
)
def test_last_boxed(text, boxed):
    assert last_boxed(text) == boxed


@pytest.mark.parametrize(
    ("text", "gold", "expected"),
    [
        ("\\boxed{016}", "16", True),
        ("\\boxed{17}", "16", False),
        ("\\boxed{x + 1}", "x+1", True),
        ("16", "16", False),
    ],
)
def test_quick_correct(text, gold, expected):
    assert quick_correct(text, gold) is expected


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_reports_counts_rate_and_estimate(terminal):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=150)
    progress = RunProgress(console)
    progress.start_task("arith-demo", total=4, done=1)
    progress.advance(10, True)
    progress.advance(30, False)
    progress.advance(20, True)
    progress.finish_task()
    text = buffer.getvalue()
    assert "resuming, 1/4 samples already stored" in text
    assert "4/4" in text and "66.7" in text  # 2 of the 3 new samples look right


def test_summary_marks_incomplete_runs():
    metrics = {
        "task": "aime24", "n": 2, "num_problems": 2, "pass_at_1": 50.0, "stderr": 5.0, "ci95": [40.0, 60.0],
        "truncation_rate": 25.0, "missing_samples": 1, "per_problem": [{"samples": 2}, {"samples": 1}],
    }  # fmt: skip
    console = Console(file=io.StringIO(), width=200)
    console.print(summary_table([("results/abc", {"final": False, "metrics": metrics})]))
    text = console.file.getvalue()
    assert (
        "INCOMPLETE (1 missing)" in text and "3/4" in text and "50.00 ± 5.00" in text and "final" not in text
    )


def test_summary_shows_the_official_pass_at_1_and_the_no_answer_and_in_thinking_rates():
    metrics = {
        "task": "aime24", "n": 2, "num_problems": 1, "pass_at_1": 50.0, "stderr": 0.0, "ci95": [50.0, 50.0],
        "no_answer_rate": 12.5, "answer_in_thinking_rate": 37.5, "official": {"pass_at_1": 75.0},
        "per_problem": [{"samples": 2}],
    }  # fmt: skip
    strict = {"scoring": {"options": {"strict_thinking": True}}}
    old = {k: v for k, v in metrics.items() if k not in ("official", "answer_in_thinking_rate")}
    console = Console(file=io.StringIO(), width=200)
    console.print(
        summary_table(
            [
                ("results/a", {"final": True, "metrics": metrics, "provenance": strict}),
                ("results/b", {"final": True, "metrics": old}),
            ]  # fmt: skip
        )
    )
    new_row, old_row = [line for line in console.file.getvalue().splitlines() if "aime24" in line]
    cells = [c.strip() for c in new_row.split("│")]
    assert "75.00" in cells and "12.5%" in cells and "37.5%" in cells and "final (strict thinking)" in cells
    assert [c.strip() for c in old_row.split("│")].count("-") == 2  # scored before: no official, no rate
