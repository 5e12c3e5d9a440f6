"""score_many: order, worker-count invariance, memoisation, and a hard timeout on a sympy hang.

One batch per worker count is scored once for the whole module (pool start-up is the slow part).
"""

from __future__ import annotations

import pytest

from evalkit.scoring import ScoreItem, check, score_many
from evalkit.scoring.pool import plan

# math-verify/sympy evaluates this exponent tower (a number with ~10^369693099 digits) and never
# returns; it ran past 20 s in a direct `check` call when this test was written.
HANG = ScoreItem("5", r"The answer is \boxed{9^{9^{9^{9}}}}", "math")

ITEMS = [
    HANG,
    ScoreItem(r"\frac{1}{2}", r"\boxed{0.5}", "math"),
    ScoreItem(r"2\sqrt{2}", r"\boxed{\sqrt{8}}", "math"),
    ScoreItem("16", r"\boxed{016}", "integer"),
    ScoreItem("C", r"\boxed{\text{(C)}}", "choice"),
    ScoreItem(r"x^2+2x+1", r"\boxed{(x-1)^2}", "math"),
    ScoreItem("5", r"<think>cut off", "math"),
    ScoreItem(r"2\sqrt{2}", r"again \boxed{\sqrt{8}}", "math"),  # same (gold, extracted): memoised
    ScoreItem(r"(1,2]", r"\boxed{(1,2]}", "math"),
]


@pytest.fixture(scope="module")
def scored():
    increments: list[int] = []
    two = score_many(ITEMS, workers=2, timeout=3.0, progress=increments.append)
    one = score_many(ITEMS, workers=1, timeout=3.0)
    return two, one, increments


def test_hung_item_times_out_and_later_items_are_scored(scored):
    two, _, _ = scored
    assert two[0].correct is False and two[0].reason == "timeout"
    assert two[0].extracted == "9^{9^{9^{9}}}"
    assert [v.correct for v in two[1:]] == [True, True, True, True, False, False, True, True]


def test_results_match_check_and_are_identical_for_any_worker_count(scored):
    two, one, _ = scored
    assert two == one
    assert two[1:] == [check(i.gold, i.response, i.answer_type) for i in ITEMS[1:]]


def test_progress_counts_every_item_once(scored):
    _, _, increments = scored
    assert sum(increments) == len(ITEMS)


def test_identical_pairs_are_verified_once():
    items = [ScoreItem(r"2\sqrt{2}", rf"step {i}: \boxed{{\sqrt{{8}}}}", "math") for i in range(50)]
    verdicts, jobs, owners = plan(items, "evalkit")
    assert len(jobs) == 1 and owners == [[(i, "answer") for i in range(50)]]
    assert all(v is None for v in verdicts)


def test_cheap_answers_need_no_worker():
    items = [ScoreItem("16", r"\boxed{16}", "integer"), ScoreItem("B", r"Answer: B", "choice")]
    verdicts, jobs, _ = plan(items, "evalkit")
    assert jobs == [] and [v.correct for v in verdicts] == [True, True]


def test_empty_batch_and_in_process_worker_counts():
    assert score_many([], workers=0) == []
    # cheap items never start a pool, whatever the worker count
    assert score_many([ScoreItem("3", r"\boxed{003}", "integer")], workers=0) == [
        check("3", r"\boxed{003}", "integer")
    ]
