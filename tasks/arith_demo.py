"""arith-demo: 30 arithmetic word problems with integer answers, generated in code from a fixed seed.

No external data and no network: it exists so the demo and the tests can run anywhere. The problems are
easy on purpose; the task shows the machinery, not a model's skill. Ids: "arith-000" .. "arith-029".
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from evalkit.core.types import Problem
from tasks.prompts import MATH_PROMPTS, render, user_turn
from tasks.task import Task

SEED = 2024
COUNT = 30


def _muffins(rng: random.Random) -> tuple[str, int]:
    trays, per_tray = rng.randint(3, 9), rng.randint(6, 12)
    sold = rng.randint(1, trays * per_tray - 1)
    text = (
        f"A baker bakes {trays} trays of {per_tray} muffins each and sells {sold} muffins. "
        "How many muffins are left?"
    )
    return text, trays * per_tray - sold


def _marbles(rng: random.Random) -> tuple[str, int]:
    start = rng.randint(20, 90)
    given, bought = rng.randint(1, start - 1), rng.randint(1, 40)
    text = (
        f"Tom has {start} marbles. He gives {given} marbles to his sister and then buys {bought} more. "
        "How many marbles does Tom have now?"
    )
    return text, start - given + bought


def _train(rng: random.Random) -> tuple[str, int]:
    speed, hours = rng.randint(40, 120), rng.randint(2, 9)
    return (
        f"A train travels at {speed} kilometers per hour for {hours} hours. How many kilometers does it travel?",
        speed * hours,
    )


def _pencils(rng: random.Random) -> tuple[str, int]:
    students, each = rng.randint(3, 12), rng.randint(2, 15)
    text = f"{students} students share {students * each} pencils equally. How many pencils does each student get?"
    return text, each


def _garden(rng: random.Random) -> tuple[str, int]:
    rows, per_row, extra = rng.randint(4, 15), rng.randint(5, 20), rng.randint(1, 30)
    text = (
        f"A garden has {rows} rows of {per_row} tulips and {extra} more tulips by the gate. "
        "How many tulips are in the garden?"
    )
    return text, rows * per_row + extra


_KINDS: tuple[Callable[[random.Random], tuple[str, int]], ...] = (
    _muffins,
    _marbles,
    _train,
    _pencils,
    _garden,
)


def generate() -> list[dict]:
    """The 30 rows, identical on every machine (Python's seeded Random is stable across versions)."""
    rng = random.Random(SEED)
    rows = []
    for index in range(COUNT):
        text, answer = _KINDS[index % len(_KINDS)](rng)
        rows.append({"id": f"arith-{index:03d}", "problem": text, "answer": answer})
    return rows


def read_rows(data_dir: Path | None) -> list[dict]:
    return generate()


def to_problem(row: dict, prompt_name: str, template: str) -> Problem:
    return Problem(
        id=row["id"],
        messages=user_turn(render(template, problem=row["problem"])),
        gold=str(row["answer"]),
        answer_type="integer",
        metadata={},
    )


TASK = Task(
    name="arith-demo",
    source=f"generated in code (seed {SEED}), no data needed",
    default_n=4,
    answer_type="integer",
    prompt_templates=MATH_PROMPTS,
    metadata_fields=(),
    expected_count=COUNT,
    read_rows=read_rows,
    to_problem=to_problem,
)
