"""AIME 2025 (contests I and II): 30 problems with integer answers 0-999.

Source: math-ai/aime25 test.jsonl (AoPS wiki wording). Ids are "0".."29": 0-14 are AIME I problems
1-15, 15-29 are AIME II problems 1-15. Gold: the integer `answer` as a string. (The official Phi-4
evaluation script loaded yentinglin/aime_2025 through lighteval; same problems and answers, its text was
not byte-compared with this file.)

Known defects of the canonical text, kept AS IS so prompts (and so scores) stay comparable with other
harnesses that load the same file:
- ids 18 and 27: `\\frac` was decoded as a form feed (U+000C) followed by `rac`; id 19: `\\triangle` as a
  TAB followed by `riangle`;
- ids 4 and 7 end with a stray unbalanced `$`;
- id 29 omits the official restriction to positive reals (the answer, 240, is unaffected).
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.types import Problem
from tasks.contests import aime_halves, integer_problem
from tasks.loading import HubSource, RowSpec, load_rows, read_jsonl
from tasks.prompts import MATH_PROMPTS
from tasks.task import Task

LOCAL_FILE = "aime25.jsonl"
# Revision pinned from public evaluation code that pins the same dataset (test.jsonl, 15,813 bytes).
HUB = HubSource("math-ai/aime25", "563bb8404243c5f09de6ec262f2db674fe5bce9b", split="test")
SPEC = RowSpec(
    required=("id", "problem", "answer"), id_field="id", expected_count=30, integer_fields=("answer",)
)


def read_rows(data_dir: Path | None) -> list[dict]:
    return load_rows("aime25", data_dir, LOCAL_FILE, lambda path: read_jsonl(path, SPEC), HUB, SPEC)


def to_problem(row: dict, prompt_name: str, template: str) -> Problem:
    return integer_problem(row, template, aime_halves(row["id"], 2025))


TASK = Task(
    name="aime25",
    source="AIME 2025 I+II (math-ai/aime25)",
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
