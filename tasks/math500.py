"""MATH-500: the 500-problem test subset of MATH (Hendrycks et al. 2021) chosen in "Let's Verify Step by
Step" (Lightman et al. 2023, https://arxiv.org/abs/2305.20050).

Source: openai/prm800k math_splits/test.jsonl (= HuggingFaceH4/MATH-500). Id: `unique_id` (the original
MATH test path, e.g. "test/precalculus/807.json"). Gold: the LaTeX `answer` (the last `\\boxed{}` of the
reference solution). Metadata: `subject` (7 MATH subjects) and `level` (1-5).
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.types import Problem
from tasks.loading import HubSource, RowSpec, as_integer, load_rows, read_jsonl
from tasks.prompts import MATH_PROMPTS, render, user_turn
from tasks.task import Task

LOCAL_FILE = "math500.jsonl"
# Revision pinned from public evaluation code that pins the same dataset.
HUB = HubSource("HuggingFaceH4/MATH-500", "6e4ed1a2a79af7d8630a6b768ec859cb5af4d3be", split="test")
SPEC = RowSpec(
    required=("unique_id", "problem", "answer", "subject", "level"),
    id_field="unique_id",
    expected_count=500,
    integer_fields=("level",),
)


def read_rows(data_dir: Path | None) -> list[dict]:
    return load_rows("math500", data_dir, LOCAL_FILE, lambda path: read_jsonl(path, SPEC), HUB, SPEC)


def to_problem(row: dict, prompt_name: str, template: str) -> Problem:
    return Problem(
        id=row["unique_id"],
        messages=user_turn(render(template, problem=row["problem"])),
        gold=row["answer"],
        answer_type="math",
        metadata={"subject": row["subject"], "level": as_integer(row["level"])},
    )


TASK = Task(
    name="math500",
    source="MATH-500 (openai/prm800k = HuggingFaceH4/MATH-500)",
    default_n=8,
    answer_type="math",
    prompt_templates=MATH_PROMPTS,
    metadata_fields=("subject", "level"),
    expected_count=SPEC.expected_count,
    read_rows=read_rows,
    to_problem=to_problem,
    local_file=LOCAL_FILE,
    hub=str(HUB),
)
