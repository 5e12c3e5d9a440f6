"""aime26, hmmt_feb25 and amc23: loaders against the shared data (counts, ids, gold forms), their Hub
fallbacks' layout mapping, the checker on HMMT's LaTeX golds, and the suites.

HMMT February 2025 is CC BY-NC-SA 4.0: no problem or answer text is copied here; the golds are read from
the shared data folder and checked against themselves and respellings built from them.
"""

from __future__ import annotations

import json
import sys
import types

import pytest

from evalkit.core.identity import data_fingerprint
from evalkit.scoring import check
from tasks import SUITES, TASK_NAMES, expand_suites, get_task

AIME26_ANSWERS = (
    [277, 62, 79, 70, 65, 441, 396, 244, 29, 156, 896, 161, 39, 681, 83]
    + [178, 243, 503, 279, 190, 50, 754, 245, 669, 850, 132, 223, 107, 157, 393]
)  # fmt: skip


def _rows(data_dir, name):
    return [json.loads(line) for line in (data_dir / f"{name}.jsonl").read_text().splitlines()]


@pytest.mark.data
def test_aime26_counts_ids_golds_and_contests(data_dir):
    problems = get_task("aime26").load(data_dir)
    assert [p.id for p in problems] == [str(i) for i in range(30)]
    assert [p.gold for p in problems] == [str(a) for a in AIME26_ANSWERS]
    assert problems[24].gold == "850"  # the "sum of all possible values" statement's answer, never 340
    assert (problems[0].metadata["contest"], problems[0].metadata["problem_number"]) == ("2026 AIME I", 1)
    assert (problems[15].metadata["contest"], problems[15].metadata["problem_number"]) == ("2026 AIME II", 1)
    assert (problems[29].metadata["contest"], problems[29].metadata["problem_number"]) == ("2026 AIME II", 15)
    assert get_task("aime26").default_n == 64 and get_task("aime26").answer_type == "integer"


@pytest.mark.data
def test_hmmt_counts_ids_and_golds_are_the_files_latex(data_dir):
    problems = get_task("hmmt_feb25").load(data_dir)
    rows = _rows(data_dir, "hmmt_feb25")
    assert [p.id for p in problems] == [str(i) for i in range(30)]
    assert [p.gold for p in problems] == [row["answer"] for row in rows]  # verbatim, never normalised
    assert sum(p.gold.lstrip("-").isdigit() for p in problems) == 14
    assert "," in problems[9].gold and "\\sqrt{17}" in problems[9].gold  # the two-value answer
    assert {p.metadata["round"] for p in problems[:10]} == {"Algebra and Number Theory"}
    assert {p.metadata["round"] for p in problems[20:]} == {"Geometry"}
    task = get_task("hmmt_feb25")
    assert (task.default_n, task.answer_type) == (64, "math")


@pytest.mark.data
def test_amc23_golds_are_integers_from_the_stored_floats(data_dir):
    problems = get_task("amc23").load(data_dir)
    rows = _rows(data_dir, "amc23")
    assert len(problems) == 40 and len({p.id for p in problems}) == 40
    assert all(isinstance(row["answer"], float) for row in rows)  # stored as 27.0 ...
    assert [p.gold for p in problems] == [str(int(row["answer"])) for row in rows]  # ... gold "27"
    by_id = {p.id: p for p in problems}
    assert (
        by_id["0"].gold == "27" and by_id["17"].gold == "-1" and "." not in "".join(p.gold for p in problems)
    )
    assert (by_id["0"].metadata["contest"], by_id["0"].metadata["problem_number"]) == ("2023 AMC 12A", 1)
    assert (by_id["49"].metadata["contest"], by_id["49"].metadata["problem_number"]) == ("2023 AMC 12B", 9)
    assert all("contest" in p.metadata for p in problems)  # every kept id is in the README's mapping


def _respellings(gold: str) -> list[str]:
    """Correct spellings a model writes, built from the gold (no answer text is copied here)."""
    spellings = [gold, gold.replace(" ", ""), gold.replace("\\frac", "\\dfrac")]
    if ", " in gold:
        first, second = gold.split(", ")
        spellings += [f"{second}, {first}", f"{first},{second}"]
    return spellings


@pytest.mark.data
def test_the_checker_accepts_every_hmmt_gold_and_its_respellings(data_dir):
    for problem in get_task("hmmt_feb25").load(data_dir):
        for spelling in _respellings(problem.gold):
            verdict = check(problem.gold, f"So the answer is \\boxed{{{spelling}}}.", "math")
            assert verdict.correct, (problem.id, spelling, verdict)


@pytest.mark.data
def test_hmmt_forms_that_need_care(data_dir):
    gold = {p.id: p.gold for p in get_task("hmmt_feb25").load(data_dir)}

    def judged(problem_id: str, answer: str) -> bool:
        return check(gold[problem_id], f"\\boxed{{{answer}}}", "math").correct

    first, second = gold["9"].split(", ")
    assert not judged("9", first) and not judged("9", second)  # one value of the two is not the answer
    assert judged("9", f"{second}, {first}") and judged("9", "\\frac{-1 \\pm \\sqrt{17}}{2}")  # both values
    assert not judged("9", "\\frac{1 \\pm \\sqrt{17}}{2}")
    assert judged("6", "\\frac{9}{\\sqrt{23}}")  # = 9 sqrt(23) / 23
    assert judged("16", "26! \\cdot 2^{25}") and judged("16", "2^{25} \\times 26!")
    assert not judged("16", "2^{26} \\cdot 26!")
    assert judged("29", "\\frac{\\sqrt{570}}{12}")  # = sqrt(95/24)
    assert judged("7", "1 - 2/\\pi")


@pytest.mark.data
@pytest.mark.parametrize("name", ["aime26", "hmmt_feb25", "amc23"])
def test_the_hub_fallback_maps_its_layout_to_the_local_rows(name, data_dir, tmp_path, monkeypatch):
    """The pinned Hub dataset's rows (fed in here in their Hub layout) give the same problems, prompts
    included, as the local file."""
    rows = _rows(data_dir, name)
    if name == "amc23":
        hub_rows = [
            {**row, "url": f"https://artofproblemsolving.com/wiki/index.php/2023_AMC_12{_amc(row)}"}
            for row in rows
        ] + [
            {"id": 0, "problem": "a 2022 problem", "answer": 1.0, "url": "x/2022_AMC_12A_Problems/Problem_1"}
        ]
        hub_rows.reverse()  # the adapter orders by url, as the local file is
    else:
        hub_rows = [
            {"problem_idx": int(row["id"]) + 1, "problem": row["problem"], "answer": row["answer"]}
            for row in reversed(rows)
        ]
        if name == "aime26":  # MathArena's copy: answers are int64, one text starts with a newline
            hub_rows[-7]["problem"] = "\n" + hub_rows[-7]["problem"]
    calls = []

    def load_dataset(repo, config, split, revision):
        calls.append((repo, split, revision))
        return hub_rows

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    task = get_task(name)
    from_hub = task.load(tmp_path)  # an empty data folder: the Hub fallback
    assert data_fingerprint(from_hub) == data_fingerprint(task.load(data_dir))
    [(repo, split, revision)] = calls
    assert task.hub == f"{repo}@{revision[:12]}" and len(revision) == 40 and split == "train"


def _amc(row: dict) -> str:
    from tasks.amc23 import CONTEST_OF_ID

    contest, number = CONTEST_OF_ID[row["id"]]
    return f"{contest[-1]}_Problems/Problem_{number}"


def test_suites_expand_to_their_tasks_in_order():
    assert SUITES["model-card"] == ("aime24", "aime25", "math500", "gpqa_diamond")
    assert SUITES["contests"] == ("aime24", "aime25", "aime26", "hmmt_feb25", "amc23")
    assert all(member in TASK_NAMES for members in SUITES.values() for member in members)
    assert expand_suites(["contests"]) == list(SUITES["contests"])
    # a task reached twice (directly and through suites) runs once, at its first place
    assert expand_suites(["math500", "model-card", "contests"]) == [
        "math500", "aime24", "aime25", "gpqa_diamond", "aime26", "hmmt_feb25", "amc23",
    ]  # fmt: skip
