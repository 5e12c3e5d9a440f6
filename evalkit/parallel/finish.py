"""The end of a split run: the parent scores every task once, over every shard's samples, and writes
results.json (final when every sample of every problem is stored)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from evalkit.core.records import Results
from evalkit.parallel.watch import StoredSamples
from evalkit.planning import TaskPlan
from evalkit.results import Session
from evalkit.runner import score_plan
from evalkit.scoring import ScoringPool


def score_split(
    plans: Sequence[TaskPlan],
    stored: StoredSamples,
    *,
    model_info: dict[str, Any] | None,
    started: str,
    notes: dict[str, Any],
    workers: int | None,
    note=print,
) -> list[tuple[TaskPlan, Results]]:
    """Score each plan's folder once; `notes` (how the run was split) go into the provenance."""
    wall = round(time.perf_counter() - stored.started, 3)
    outcomes = []
    with ScoringPool(workers) as pool:
        for index, plan in enumerate(plans):
            # Workers write config.json with their first sample; a run stored in full before still has it.
            plan.folder.initialise(plan.config, plan.problem_index(), checker=plan.checker)
            note(f"{plan.config.task}: scoring {plan.folder.path}")
            session = Session(
                model_info=model_info,
                started=started,
                wall_seconds=wall,
                notes={"generated_this_session": stored.new_per_plan[index], **notes},
            )
            outcomes.append((plan, score_plan(plan, pool, session)))
    return outcomes
