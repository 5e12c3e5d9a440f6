"""What the integer-answer contests (AIME 2024-2026, AMC 2023) share: how a validated row becomes a
Problem, and AIME's two-contest numbering."""

from __future__ import annotations

from evalkit.core.types import Problem
from tasks.loading import as_integer
from tasks.prompts import render, user_turn

AIME_PROBLEMS_PER_CONTEST = 15


def integer_problem(row: dict, template: str, metadata: dict) -> Problem:
    """The row's problem under `template`; gold is its integer answer (the reader checked it is one:
    25, "025" and 27.0 all give "25"/"27")."""
    return Problem(
        id=str(row["id"]),
        messages=user_turn(render(template, problem=row["problem"])),
        gold=str(as_integer(row["answer"])),
        answer_type="integer",
        metadata=metadata,
    )


def aime_halves(row_id: object, year: int) -> dict:
    """Ids "0".."29" in booklet order: 0-14 are AIME I problems 1-15, 15-29 AIME II problems 1-15."""
    if not str(row_id).isdigit():
        return {}
    index = int(row_id)
    half = "I" if index < AIME_PROBLEMS_PER_CONTEST else "II"
    return {"contest": f"{year} AIME {half}", "problem_number": index % AIME_PROBLEMS_PER_CONTEST + 1}
