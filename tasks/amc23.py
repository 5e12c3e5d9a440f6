"""AMC 2023 (AMC 12A and 12B): 40 problems in AI-MO's integer-answer form.

Source: the 2023 rows of HF `AI-MO/aimo-validation-amc`, as shipped in QwenLM/Qwen2.5-Math @a45202bd
`evaluation/data/amc23/test.jsonl` (re-serialised; `question` and `url` dropped). AI-MO rewrote each
multiple-choice problem to have an integer answer and dropped those it could not, so these are NOT the
original AMC questions and cannot be checked against the official letter key (e.g. id 8 asks for m+n of a
probability 1/2: answer 3). Ids: the source's integer id (0-49 with gaps) as a string. Answers are
stored as floats (`27.0`, `-1.0`) that are all whole numbers; gold is the integer as a string ("27").
Metadata: `contest` (2023 AMC 12A / 12B) and `problem_number`, from the mapping in the data README.

Hub fallback: `AI-MO/aimo-validation-amc` split "train" at 69d78a4a2c840e82d69af6bc742bda09005f6316, the
revision pinned by public evaluation code (training/eval scripts pinning
`data/train-00000-of-00001.parquet`, 19,141 bytes). That set holds 83 rows (2022 and 2023): only rows whose
AoPS `url` names 2023 are kept, in url order (the local file's order).

Source defects kept as is: id 36 "He had $$43$ dollars." (a stray `$`); id 48 writes sets without escaped
braces; id 22 "8-digital display"; id 16 "$n = 5$.What". Displays are plain text; no images.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.types import Problem
from tasks.contests import integer_problem
from tasks.loading import HubSource, RowSpec, as_integer, load_rows, read_jsonl
from tasks.prompts import MATH_PROMPTS
from tasks.task import Task

LOCAL_FILE = "amc23.jsonl"
HUB = HubSource("AI-MO/aimo-validation-amc", "69d78a4a2c840e82d69af6bc742bda09005f6316", split="train")
SPEC = RowSpec(
    required=("id", "problem", "answer"), id_field="id", expected_count=40, integer_fields=("answer",)
)
YEAR_IN_URL = "2023_AMC"
# id -> (contest, problem number), from the data README (AoPS urls of the 40 kept problems).
_A = {0: 1, 11: 2, 18: 3, 19: 4, 20: 5, 21: 6, 22: 7, 23: 8, 1: 10, 2: 11, 3: 12, 4: 13, 5: 14, 7: 16, 8: 17}
_A |= {10: 19, 12: 20, 13: 21, 14: 22, 15: 23, 16: 24, 17: 25}
_B = {25: 1, 36: 2, 43: 3, 44: 4, 45: 5, 46: 6, 47: 7, 48: 8, 49: 9, 26: 10, 27: 11, 28: 12, 29: 13}
_B |= {30: 14, 32: 16, 33: 17, 40: 23, 41: 24}
CONTEST_OF_ID = {i: ("2023 AMC 12A", p) for i, p in _A.items()} | {
    i: ("2023 AMC 12B", p) for i, p in _B.items()
}


def from_hub(rows: list[dict]) -> list[dict]:
    kept = sorted((row for row in rows if YEAR_IN_URL in str(row["url"])), key=lambda row: str(row["url"]))
    return [{"id": row["id"], "problem": row["problem"], "answer": row["answer"]} for row in kept]


def read_rows(data_dir: Path | None) -> list[dict]:
    return load_rows("amc23", data_dir, LOCAL_FILE, lambda path: read_jsonl(path, SPEC), HUB, SPEC, from_hub)


def to_problem(row: dict, prompt_name: str, template: str) -> Problem:
    metadata: dict = {}
    known = CONTEST_OF_ID.get(as_integer(row["id"]))
    if known is not None:
        metadata["contest"], metadata["problem_number"] = known
    return integer_problem(row, template, metadata)


TASK = Task(
    name="amc23",
    source="AMC 12 2023, AI-MO integer form (AI-MO/aimo-validation-amc 2023 rows)",
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
