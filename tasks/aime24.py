"""AIME 2024 (American Invitational Mathematics Examination, contests I and II): 30 problems with
integer answers 0-999.

Source: the AI-MO / HuggingFaceH4/aime_2024 version (ids 60-89, AoPS wiki wording), as shipped in
QwenLM/Qwen2.5-Math evaluation/data/aime24/test.jsonl. Gold: the integer `answer` as a string ("25",
never "025"). The AoPS `url` identifies the contest and problem number (e.g. 2024 AIME I, problem 8).
"""

from __future__ import annotations

import re
from pathlib import Path

from evalkit.core.types import Problem
from tasks.contests import integer_problem
from tasks.loading import HubSource, RowSpec, load_rows, read_jsonl
from tasks.prompts import MATH_PROMPTS
from tasks.task import Task

LOCAL_FILE = "aime24.jsonl"
# Revision pinned from public evaluation code that pins the same dataset; split is named "train".
HUB = HubSource("HuggingFaceH4/aime_2024", "2fe88a2f1091d5048c0f36abc874fb997b3dd99a", split="train")
SPEC = RowSpec(
    required=("id", "problem", "answer"), id_field="id", expected_count=30, integer_fields=("answer",)
)
_URL = re.compile(r"(\d{4})_AIME_(I{1,2})_Problems/Problem_(\d+)")


def read_rows(data_dir: Path | None) -> list[dict]:
    return load_rows("aime24", data_dir, LOCAL_FILE, lambda path: read_jsonl(path, SPEC), HUB, SPEC)


def to_problem(row: dict, prompt_name: str, template: str) -> Problem:
    metadata: dict = {}
    if row.get("url"):
        metadata["url"] = row["url"]
        match = _URL.search(row["url"])
        if match:
            metadata["contest"] = f"{match.group(1)} AIME {match.group(2)}"
            metadata["problem_number"] = int(match.group(3))
    return integer_problem(row, template, metadata)


TASK = Task(
    name="aime24",
    source="AIME 2024 I+II (HuggingFaceH4/aime_2024 / AI-MO version)",
    default_n=64,
    answer_type="integer",
    prompt_templates=MATH_PROMPTS,
    metadata_fields=(),
    expected_count=SPEC.expected_count,
    read_rows=read_rows,
    to_problem=to_problem,
    local_file=LOCAL_FILE,
    hub=str(HUB),
)
