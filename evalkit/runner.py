"""A run end to end: for each planned task, generate what is missing, score everything stored, write the
results; and `rescore`, the same last two steps for a folder on disk (`evalkit score`, `evalkit merge`).

The Task objects (inside the plans) and the Backend arrive as arguments: the CLI builds them.
"""

from __future__ import annotations

import time
from dataclasses import replace

from evalkit.core.errors import EvalkitError, describe_os_error
from evalkit.core.files import now_iso
from evalkit.core.records import CheckerSpec, Results
from evalkit.core.run_folder import RunFolder
from evalkit.core.types import Backend
from evalkit.generation import generate_missing
from evalkit.planning import TaskPlan
from evalkit.progress import RunProgress
from evalkit.results import Session, session_provenance, write_results
from evalkit.run_scoring import score
from evalkit.scoring import CheckerOptions, ScoringPool


def run(
    plans: list[TaskPlan],
    backend: Backend,
    *,
    workers: int | None = None,
    progress: RunProgress | None = None,
) -> list[tuple[TaskPlan, Results]]:
    """Run every planned task through one backend; returns (plan, results) per task."""
    model_info = backend.model_info()
    outcomes = []
    with ScoringPool(workers) as pool:  # one set of checker processes for every task of the run
        for plan in plans:
            outcomes.append((plan, _run_task(plan, backend, model_info, pool, progress)))
    return outcomes


def _run_task(
    plan: TaskPlan, backend: Backend, model_info: dict, pool: ScoringPool, progress: RunProgress | None
) -> Results:
    started_iso, started = now_iso(), time.perf_counter()
    stats = generate_missing(plan, backend, progress)  # creates the folder with its first sample
    # A shard with no problems stores no sample: its folder still gets its (empty) results.
    plan.folder.initialise(plan.config, plan.problem_index(), checker=plan.checker)
    session = Session(
        model_info=model_info,
        started=started_iso,
        wall_seconds=round(time.perf_counter() - started, 3),
        shard=None if plan.shard.is_whole else plan.shard.label,
        notes={"generated_this_session": stats.generated_samples},
    )
    if progress:
        progress.note(f"{plan.config.task}: scoring {plan.folder.path}")
    return score_plan(plan, pool, session)


def score_plan(plan: TaskPlan, pool: ScoringPool, session: Session) -> Results:
    """Score every stored completion of one planned task and write scores.jsonl + results.json; also the
    last step of a split run (--data-parallel, --ray), where the parent scores once for all shards."""
    scored = score(plan.folder.completions(), plan.config, plan.problem_index(), plan.checker, pool=pool)
    try:
        return write_results(plan.folder, plan.config, scored, session_provenance(session, scored))
    except OSError as err:  # a full disk: the completions are safe, only the verdicts are not written
        raise EvalkitError(
            f"{describe_os_error(err)}; the {len(scored.scores)} stored samples in {plan.folder.path} are "
            f"kept: once it can be written, `evalkit score {plan.folder.path}` writes the results"
        ) from err


def rescore(
    folder: RunFolder,
    checker: CheckerSpec,
    *,
    workers: int | None = None,
    options: CheckerOptions | None = None,
    session: Session | None = None,
) -> Results:
    """Score every stored completion of `folder` again, with the current checker and `options` (None:
    those `checker` recorded); rewrites scores.jsonl and results.json.

    `session` is this process's provenance (merge); without it the previous provenance is kept and only
    its "scoring" part changes.
    """
    header = folder.header()
    scored = score(
        folder.completions(), header.config, header.problems, checker, workers=workers, options=options
    )
    if session is None and folder.has_results():
        provenance = replace(folder.results().provenance, scoring=scored.scoring)
    else:
        provenance = session_provenance(session or Session(), scored)
    return write_results(folder, header.config, scored, provenance)
