"""Each benchmark loads from the local data folder with the right counts, ids, golds and metadata."""

from __future__ import annotations

from collections import Counter

import pytest

from evalkit.core.identity import data_fingerprint
from tasks import TASK_NAMES, get_task

EXPECTED_COUNTS = {
    "aime24": 30,
    "aime25": 30,
    "aime26": 30,
    "hmmt_feb25": 30,
    "amc23": 40,
    "math500": 500,
    "gpqa_diamond": 198,
    "arith-demo": 30,
}


def test_registry_names_and_defaults():
    assert TASK_NAMES == (
        "aime24", "aime25", "aime26", "hmmt_feb25", "amc23", "math500", "gpqa_diamond", "arith-demo",
    )  # fmt: skip
    assert {name: get_task(name).default_n for name in TASK_NAMES} == {
        "aime24": 64,
        "aime25": 64,
        "aime26": 64,
        "hmmt_feb25": 64,
        "amc23": 64,
        "math500": 8,
        "gpqa_diamond": 8,
        "arith-demo": 4,
    }
    assert {name: get_task(name).answer_type for name in TASK_NAMES} == {
        "aime24": "integer",
        "aime25": "integer",
        "aime26": "integer",
        "hmmt_feb25": "math",
        "amc23": "integer",
        "math500": "math",
        "gpqa_diamond": "choice",
        "arith-demo": "integer",
    }
    for name in TASK_NAMES:
        assert get_task(name).expected_count == EXPECTED_COUNTS[name]


@pytest.mark.parametrize("name", [n for n in TASK_NAMES if n != "arith-demo"])
def test_counts_and_unique_ids(name, data_dir):
    problems = get_task(name).load(data_dir)
    assert len(problems) == EXPECTED_COUNTS[name]
    assert len({p.id for p in problems}) == len(problems)
    assert all(isinstance(p.id, str) and p.gold for p in problems)
    assert all(p.answer_type == get_task(name).answer_type for p in problems)


@pytest.mark.parametrize(
    "name, problem_id, gold",
    [
        ("aime24", "73", "197"),  # 2024 AIME I problem 8 (one public copy wrongly says 480)
        ("aime24", "63", "385"),  # 2024 AIME I problem 12 (some copies had 384)
        ("aime24", "67", "25"),  # stored as 25, never "025"
        ("aime25", "19", "336"),  # 2025 AIME II problem 5
        ("aime25", "0", "70"),
        ("math500", "test/precalculus/807.json", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("math500", "test/algebra/1349.json", "\\text{Evelyn}"),
        ("math500", "test/precalculus/927.json", "90^\\circ"),
    ],
)
def test_known_golds(name, problem_id, gold, data_dir):
    by_id = {p.id: p for p in get_task(name).load(data_dir)}
    assert by_id[problem_id].gold == gold


def test_aime_metadata_identifies_contest_and_problem(data_dir):
    aime24 = {p.id: p for p in get_task("aime24").load(data_dir)}
    assert aime24["73"].metadata["contest"] == "2024 AIME I"
    assert aime24["73"].metadata["problem_number"] == 8
    aime25 = {p.id: p for p in get_task("aime25").load(data_dir)}
    assert (aime25["19"].metadata["contest"], aime25["19"].metadata["problem_number"]) == ("2025 AIME II", 5)


def test_aime25_defects_are_kept_as_in_the_canonical_text(data_dir):
    by_id = {p.id: p for p in get_task("aime25").load(data_dir)}
    assert "\x0crac" in by_id["18"].messages[0]["content"]  # `\frac` decoded as form feed upstream
    assert "\triangle" in by_id["19"].messages[0]["content"]  # `\triangle` decoded as TAB upstream


def test_math500_metadata_distribution(data_dir):
    problems = get_task("math500").load(data_dir)
    assert Counter(p.metadata["subject"] for p in problems) == {
        "Algebra": 124,
        "Intermediate Algebra": 97,
        "Prealgebra": 82,
        "Number Theory": 62,
        "Precalculus": 56,
        "Geometry": 41,
        "Counting & Probability": 38,
    }
    assert Counter(p.metadata["level"] for p in problems) == {1: 43, 2: 90, 3: 105, 4: 128, 5: 134}


def test_gpqa_domains_and_gold_text(data_dir):
    problems = get_task("gpqa_diamond").load(data_dir)
    assert Counter(p.metadata["domain"] for p in problems) == {"Chemistry": 93, "Physics": 86, "Biology": 19}
    assert all(p.gold == p.metadata["options"][0] for p in problems)
    # The correct text never equals an incorrect one, so the gold letter is never ambiguous ...
    assert all(p.gold not in p.metadata["options"][1:] for p in problems)
    # ... but in two source rows two INCORRECT options are identical (kept as in the original data).
    duplicated = {p.id for p in problems if len(set(p.metadata["options"])) < 4}
    assert duplicated == {"recZSGUkn56v9kEp1", "recnGEpF1srQpaqWq"}


def test_arith_demo_needs_no_data_and_is_reproducible():
    first, second = get_task("arith-demo").load(), get_task("arith-demo").load()
    assert [p.id for p in first] == [f"arith-{i:03d}" for i in range(30)]
    assert first == second
    assert all(p.gold.lstrip("-").isdigit() for p in first)
    assert data_fingerprint(first) == data_fingerprint(second)


def test_fingerprint_changes_with_any_row_and_with_the_prompt():
    task = get_task("arith-demo")
    problems = task.load()
    base = data_fingerprint(problems)
    # Pinned: the fingerprint enters every run_id, so a change here silently orphans existing results.
    assert base == "6c7beeb6a06ad8d234a152e0d7860affca3f755a8448139462babf869f3fb72c"
    assert data_fingerprint(problems[:-1]) != base
    assert data_fingerprint(list(reversed(problems))) != base
    assert data_fingerprint(task.load(prompt="lighteval")) != base
