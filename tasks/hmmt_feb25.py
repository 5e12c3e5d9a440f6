"""HMMT February 2025 (Harvard-MIT Mathematics Tournament): 30 problems with LaTeX answers.

Source: MathArena's own transcription (eth-sri/matharena @81f103e3 `data/hmmt/hmmt_feb_2025/`: one
`problems/k.tex` per problem + `answers.csv`), the same content as HF `MathArena/hmmt_feb_2025`. Ids are
"0".."29" (matharena id - 1); by content 0-9 are the Algebra and Number Theory round, 10-19
Combinatorics, 20-29 Geometry (metadata `round`). Gold: the `answer` string, LaTeX exactly as stored
(14 are plain integers); answer type "math".

LICENCE: CC BY-NC-SA 4.0 (MathArena). Non-commercial use only; credit MathArena. Never copy problem or
answer text into this repository: tests read the shared data folder.

Hub fallback: `MathArena/hmmt_feb_2025` split "train" at 6fdc4277120810ff75aa22d2d5489b91f7a262a1, the
revision pinned by public evaluation code (scitix/sieval `sieval/datasets/hmmt_feb_2025.py` @01d2530c; an
OpenCompass MathArena adapter pins the same). Its rows are `problem_idx` 1-30, `problem`, `answer`
(string), `problem_type`: id = problem_idx - 1.

Answer forms that need a careful checker (evalkit's math checker judges each gold against itself and the
usual equivalent spellings as correct; tests/tasks/test_new_tasks.py): id 9 is a two-value answer
`a, b` compared as an unordered set (the problem asks for a comma-separated list; the checker also
accepts the one `\\pm` expression that denotes both values, never one value alone), id 6
`\\frac{9 \\sqrt{23}}{23}` (= 9/sqrt 23), id 16 `2^{25} \\cdot 26!`, id 29 `\\sqrt{\\frac{95}{24}}`, id 7 `1-\\frac{2}{\\pi}`, id 24 `\\sqrt{23}-2 \\sqrt{3}`.
Statement typos are kept as is (id 11 "Kevin the frog in on ... topright"; id 4 splits one equation over
two math spans; ids 22 and 29 leave numbers outside math mode); id 23 has its figure as TikZ code.
The answer key is MathArena's; no official HMMT key was available to compare against.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.types import Problem
from tasks.loading import HubSource, RowSpec, load_rows, matharena_rows, read_jsonl
from tasks.prompts import MATH_PROMPTS, render, user_turn
from tasks.task import Task

LOCAL_FILE = "hmmt_feb25.jsonl"
HUB = HubSource("MathArena/hmmt_feb_2025", "6fdc4277120810ff75aa22d2d5489b91f7a262a1", split="train")
SPEC = RowSpec(required=("id", "problem", "answer"), id_field="id", expected_count=30)
ROUNDS = ("Algebra and Number Theory", "Combinatorics", "Geometry")  # 10 problems each, in id order
PROBLEMS_PER_ROUND = 10


def from_hub(rows: list[dict]) -> list[dict]:
    return matharena_rows(rows, answer=str)


def read_rows(data_dir: Path | None) -> list[dict]:
    return load_rows(
        "hmmt_feb25", data_dir, LOCAL_FILE, lambda path: read_jsonl(path, SPEC), HUB, SPEC, from_hub
    )


def to_problem(row: dict, prompt_name: str, template: str) -> Problem:
    metadata: dict = {}
    if str(row["id"]).isdigit() and int(row["id"]) < len(ROUNDS) * PROBLEMS_PER_ROUND:
        metadata["round"] = ROUNDS[int(row["id"]) // PROBLEMS_PER_ROUND]
    return Problem(
        id=str(row["id"]),
        messages=user_turn(render(template, problem=row["problem"])),
        gold=str(row["answer"]),
        answer_type="math",
        metadata=metadata,
    )


TASK = Task(
    name="hmmt_feb25",
    source="HMMT February 2025 (MathArena/hmmt_feb_2025; CC BY-NC-SA 4.0)",
    default_n=64,
    answer_type="math",
    prompt_templates=MATH_PROMPTS,
    metadata_fields=("round",),
    expected_count=SPEC.expected_count,
    read_rows=read_rows,
    to_problem=to_problem,
    local_file=LOCAL_FILE,
    hub=str(HUB),
)
