"""GPQA Diamond: 198 graduate-level multiple-choice questions in biology, physics and chemistry
(Rein et al. 2023, "GPQA: A Graduate-Level Google-Proof Q&A Benchmark", https://arxiv.org/abs/2311.12022).

Source: the authors' password-protected dataset.zip (dataset/gpqa_diamond.csv), read in memory only:
the authors ask that examples not be revealed in plain text online, so nothing here writes them out.
Id: `Record ID`. Problem.gold: the correct answer's TEXT. Metadata: `domain` (High-level domain),
`subdomain`, plus what sample views are rendered from (question and options inserted verbatim, unstripped,
as the official script and simple-evals do): `question`, `options` (index 0 = correct answer,
1..3 = incorrect answers 1..3) and `prompt_name`. Don't dump metadata of this task to disk wholesale.

Option order: each sample sees its own deterministic permutation of the four options, a function of
(question id, sample index, seed) only. The correct option sits at letter (sample_index + h(id, seed)) % 4,
so over any 4 consecutive sample indices it lands on each letter exactly once; the incorrect options fill
the other letters in an order hashed from (id, sample index, seed). The gold letter is per sample
(SampleView.gold) and the permutation is recorded with each completion.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.types import Problem, SampleView
from tasks.choices import balanced_order
from tasks.loading import HubSource, RowSpec, load_rows, read_csv_in_zip
from tasks.prompts import CHOICE_PROMPTS, render, user_turn
from tasks.task import Task

LOCAL_FILE = "gpqa/dataset.zip"
ZIP_MEMBER = "dataset/gpqa_diamond.csv"
ZIP_PASSWORD = "deserted-untie-orchid"  # published in the idavidrein/gpqa README
# Gated dataset. Revision pinned from public evaluation code whose cached gpqa_diamond.csv has the same
# sha256 (41d1213c...) as the CSV inside the original zip.
HUB = HubSource(
    "Idavidrein/gpqa",
    "633f5ee89ab8ad4522a9f850766b73f62147ffdd",
    split="train",
    config="gpqa_diamond",
    gated=True,
)
OPTION_FIELDS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
SPEC = RowSpec(
    required=("Record ID", "Question", *OPTION_FIELDS, "High-level domain", "Subdomain"),
    id_field="Record ID",
    expected_count=198,
)
LETTERS = "ABCD"


def read_rows(data_dir: Path | None) -> list[dict]:
    def read_zip(path: Path) -> list[dict]:
        return read_csv_in_zip(path, ZIP_MEMBER, ZIP_PASSWORD, SPEC)

    return load_rows("gpqa_diamond", data_dir, LOCAL_FILE, read_zip, HUB, SPEC)


def option_order(question_id: str, sample_index: int, seed: int) -> tuple[int, ...]:
    """order[letter] = original option index (0 = correct) shown at that letter (A=0 .. D=3)."""
    return balanced_order("gpqa", question_id, sample_index, seed, len(LETTERS))


def make_view(task: Task, problem: Problem, sample_index: int, seed: int) -> SampleView:
    order = option_order(problem.id, sample_index, seed)
    options = problem.metadata["options"]
    text = render(
        task.template(problem.metadata["prompt_name"]),
        Question=problem.metadata["question"],
        **{letter: options[index] for letter, index in zip(LETTERS, order, strict=True)},
    )
    return SampleView(messages=user_turn(text), gold=LETTERS[order.index(0)], permutation=order)


def to_problem(row: dict, prompt_name: str, template: str) -> Problem:
    problem = Problem(
        id=row["Record ID"],
        messages=(),
        gold=row["Correct Answer"],
        answer_type="choice",
        metadata={
            "domain": row["High-level domain"],
            "subdomain": row["Subdomain"],
            "question": row["Question"],
            "options": [row[name] for name in OPTION_FIELDS],
            "prompt_name": prompt_name,
        },
    )
    # Problem.messages is sample 0's view under seed 0 (the contract in evalkit.core.types).
    first = make_view(TASK, problem, sample_index=0, seed=0)
    return Problem(problem.id, first.messages, problem.gold, problem.answer_type, problem.metadata)


TASK = Task(
    name="gpqa_diamond",
    source="GPQA Diamond (idavidrein/gpqa dataset.zip / Idavidrein/gpqa, gated)",
    default_n=8,
    answer_type="choice",
    prompt_templates=CHOICE_PROMPTS,
    metadata_fields=("domain", "subdomain"),
    expected_count=SPEC.expected_count,
    read_rows=read_rows,
    to_problem=to_problem,
    local_file=LOCAL_FILE,
    hub=str(HUB),
    make_view=make_view,
    private=True,  # the authors ask that examples not be revealed in plain text
)
