"""AIME 2026 (contests I and II): 30 problems with integer answers 0-999.

Source: MathArena's transcription, as in HF `MathArena/aime_2026` (= `math-ai/aime26`), local copy
jianzhnie/LLMEval `data/aime26.jsonl` @136f2d88 with its instruction suffix removed (data README). Ids are
"0".."29": 0-14 are AIME I problems 1-15, 15-29 are AIME II problems 1-15 (checked against the printed
booklets). Gold: the integer `answer` as a string. Licence: treat as CC BY-NC-SA 4.0 (MathArena's text).

Hub fallback: `MathArena/aime_2026` split "train" at d2de22f3c656b4f56cf8981212186377d1e23bc3, the revision
pinned by public evaluation code (scitix/sieval `sieval/datasets/aime_2026.py` @01d2530c, and others).
Its rows are `problem_idx` 1-30, `problem`, `answer` (int): id = problem_idx - 1, and the problem text is
stripped, as the local file's was (upstream id 6 starts with a newline), so both sources render the same
prompts.

Known defects of the canonical text, kept AS IS (comparable with other harnesses):
- id 24 (II-10) asks for the SUM of the possible values of BC (850); the US booklet asks for the greatest
  (340). The statement and its answer belong together: 850 here.
- id 9 (I-10): "perpendicular $\\overline{BC}$" where the booklet has $A'C'$ perpendicular to $BC$;
  id 12 (I-13) says "positive" for "nonnegative" and `502n+r` for `502m+r` (answers follow the booklet);
- ids 9 and 11 contain stray empty groups `{}`; no figures (id 16 has inline asy code).
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.types import Problem
from tasks.contests import aime_halves, integer_problem
from tasks.loading import HubSource, RowSpec, load_rows, matharena_rows, read_jsonl
from tasks.prompts import MATH_PROMPTS
from tasks.task import Task

LOCAL_FILE = "aime26.jsonl"
HUB = HubSource("MathArena/aime_2026", "d2de22f3c656b4f56cf8981212186377d1e23bc3", split="train")
SPEC = RowSpec(
    required=("id", "problem", "answer"), id_field="id", expected_count=30, integer_fields=("answer",)
)


def from_hub(rows: list[dict]) -> list[dict]:
    return [{**row, "problem": row["problem"].strip()} for row in matharena_rows(rows, answer=int)]


def read_rows(data_dir: Path | None) -> list[dict]:
    return load_rows("aime26", data_dir, LOCAL_FILE, lambda path: read_jsonl(path, SPEC), HUB, SPEC, from_hub)


def to_problem(row: dict, prompt_name: str, template: str) -> Problem:
    return integer_problem(row, template, aime_halves(row["id"], 2026))


TASK = Task(
    name="aime26",
    source="AIME 2026 I+II (MathArena/aime_2026 = math-ai/aime26; CC BY-NC-SA 4.0)",
    default_n=64,
    answer_type="integer",
    prompt_templates=MATH_PROMPTS,
    metadata_fields=("contest",),
    expected_count=SPEC.expected_count,
    read_rows=read_rows,
    to_problem=to_problem,
    local_file=LOCAL_FILE,
    hub=str(HUB),
)
