"""The leaderboard: rows are models (ours and published), columns are tasks, cells are Pass@1.

Runs become rows by model. Runs of one model whose run-level settings differ (sampling, seed, backend,
checker, limit, ...) are never merged: each distinct setting gets its own row, labelled with the run
ids and the fields that differ. Two runs of the same model and task that would land in one row (the
same settings, another prompt or n) also get separate rows.

With `significance=True` each task's best final cell of ours is marked, and every other final cell of
ours over the same problems says whether it is significantly below that best (paired permutation test
over problems on the per-problem counts in results.json, as `evalkit compare` computes it). Runs over
fewer problems than the task's fullest set (--limit) are not compared.

`judgement` picks whose verdicts the cells show: "evalkit" (ours), "official" (the official lighteval
judgement every scoring pass stores beside ours, results.json metrics.official: cells, means, deltas
and significance all use it; a run without one, e.g. GPQA's letters or a folder scored before it was
stored, shows "no official judgement"), or "both" (ours, with the official Pass@1 and official minus
ours beside each task).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from evalkit.core.errors import EvalkitError
from evalkit.report.loading import RunRecord
from evalkit.report.reference import Reference

KNOWN_TASK_ORDER = ("aime24", "aime25", "math500", "gpqa_diamond")
JUDGEMENTS = ("evalkit", "official", "both")
# Settings that belong to a run as a whole; a difference in any of them makes a separate row.
ROW_FIELDS = (
    "model_revision",
    "backend",
    "temperature",
    "top_p",
    "max_new_tokens",
    "seed",
    "checker_version",
    "limit",
)
# Settings that legitimately differ between the tasks of one row.
TASK_FIELDS = ("task", "data_fingerprint", "prompt_name", "prompt_hash", "n")


@dataclass(frozen=True)
class Cell:
    """One model x task entry. `status`: final | incomplete | unscored | published | no_official.
    `official`: the official judgement's Pass@1 of the same run (None: none stored)."""

    status: str
    pass_at_1: float | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None
    delta: float | None = None  # ours minus published (final cells only)
    published: float | None = None
    outside_ci: bool = False  # the published value lies outside our CI
    missing_samples: int = 0
    vs_best: str = ""  # with significance: "best" | "tied" | "below" ("" = not compared)
    vs_best_p: float | None = None  # p-value of this cell against the task's best cell of ours
    official: float | None = None


@dataclass(frozen=True)
class Row:
    model: str
    source: str  # "ours" | "published"
    config: str  # short config tag (run ids + differing fields) or the reference title
    cells: dict[str, Cell]
    run_ids: tuple[str, ...] = ()

    @property
    def mean(self) -> float | None:
        """Mean Pass@1 over this row's final (or published) cells; None when it has none."""
        values = [c.pass_at_1 for c in self.cells.values() if c.status in ("final", "published")]
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Leaderboard:
    tasks: tuple[str, ...]
    delta_tasks: tuple[str, ...]  # tasks where some row of ours has a published counterpart
    rows: tuple[Row, ...]
    reference: Reference | None = None
    notes: tuple[str, ...] = field(default=())
    judgement: str = "evalkit"


def order_tasks(tasks: set[str]) -> tuple[str, ...]:
    known = [t for t in KNOWN_TASK_ORDER if t in tasks]
    return tuple(known + sorted(tasks - set(known)))


def _official(run: RunRecord) -> dict[str, Any] | None:
    official = (run.metrics or {}).get("official")
    return official if isinstance(official, dict) and official.get("pass_at_1") is not None else None


def _cell_for_run(run: RunRecord, published: float | None, judgement: str = "evalkit") -> Cell:
    metrics = run.metrics
    if not metrics or metrics.get("pass_at_1") is None:
        return Cell(status="unscored", n=run.config.get("n"), published=published)
    official = _official(run)
    if judgement == "official":
        if official is None:
            return Cell(status="no_official", n=run.config.get("n"), published=published)
        metrics = {**metrics, "pass_at_1": official["pass_at_1"], "ci95": official.get("ci95")}
    ci_raw = metrics.get("ci95") or [math.nan, math.nan]
    ci = (float(ci_raw[0]), float(ci_raw[1]))
    value = float(metrics["pass_at_1"])
    status = "final" if run.complete else "incomplete"
    delta = value - published if (published is not None and status == "final") else None
    outside = bool(delta is not None and not (ci[0] <= published <= ci[1]))
    return Cell(
        status=status,
        pass_at_1=value,
        ci=ci,
        n=int(metrics.get("n") or run.config.get("n") or 0),
        delta=delta,
        published=published,
        outside_ci=outside,
        missing_samples=int(metrics.get("missing_samples") or 0),
        official=float(official["pass_at_1"]) if official is not None else None,
    )


def _setting(run: RunRecord, name: str) -> Any:
    """A run-level setting; the checker version is the one that scored the run (provenance), since it
    left the config (folders written before keep it there)."""
    if name == "checker_version":
        scoring = (run.provenance or {}).get("scoring") or {}
        return scoring.get("checker_version") or run.config.get(name)
    return run.config.get(name)


def _row_key(run: RunRecord) -> tuple[Any, ...]:
    return tuple(repr(_setting(run, name)) for name in ROW_FIELDS)


def _split_rows(runs: list[RunRecord]) -> list[list[RunRecord]]:
    """Group one model's runs into rows: same run-level settings, at most one run per task."""
    groups: dict[tuple[Any, ...], list[list[RunRecord]]] = {}
    for run in sorted(runs, key=lambda r: (r.task, r.run_id)):
        rows = groups.setdefault(_row_key(run), [])
        free = [row for row in rows if all(r.task != run.task for r in row)]
        # Prefer the row whose runs used the same prompt, so an official-prompt row stays official.
        same_prompt = [
            row
            for row in free
            if all(r.config.get("prompt_name") == run.config.get("prompt_name") for r in row)
        ]
        target = (same_prompt or free or [None])[0]
        if target is None:
            rows.append([run])
        else:
            target.append(run)
    return [row for rows in groups.values() for row in rows]


def _config_tags(rows: list[list[RunRecord]]) -> list[str]:
    """Run-id prefixes, plus the settings that tell this model's rows apart (only when it has several)."""
    ids = [",".join(run.short_id for run in row) for row in rows]
    if len(rows) == 1:
        return ids
    fields = sorted(
        {k for row in rows for run in row for k in run.config} - {"model", "task", "data_fingerprint"}
        | {"checker_version"}
    )

    def row_value(row: list[RunRecord], name: str) -> str:
        values = {repr(_setting(run, name)) for run in row}
        return str(_setting(row[0], name)) if len(values) == 1 else "mixed"

    differing = [f for f in fields if len({row_value(row, f) for row in rows}) > 1]
    return [
        "; ".join([ids[i], *(f"{f}={row_value(row, f)}" for f in differing if f != "prompt_hash")])
        for i, row in enumerate(rows)
    ]


SIGNIFICANCE_ALPHA = 0.05


def _per_problem_counts(run: RunRecord, judgement: str = "evalkit") -> dict[str, tuple[int, int]]:
    """(samples, correct) per problem; under the official judgement its counts (metrics per_problem
    `official_correct`)."""
    rows = (run.metrics or {}).get("per_problem") or []
    key = "official_correct" if judgement == "official" else "correct"
    return {str(r["id"]): (int(r["samples"]), int(r[key])) for r in rows if r.get("samples") and key in r}


def _p_value(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]]) -> float:
    """Paired permutation p-value of Pass@1 between two runs over the same problems (seeded, exact
    when at most 20 problems differ)."""
    from evalkit.compare.stats import sign_flip_p_value

    d = [a[p][1] / a[p][0] - b[p][1] / b[p][0] for p in sorted(a)]
    return sign_flip_p_value(d, seed=0)[0]


def mark_significance(rows: list[Row], runs: dict[str, RunRecord], judgement: str = "evalkit") -> list[Row]:
    """Per task, among our final cells over the task's fullest problem set (a --limit run covers fewer
    problems and is left unmarked): the best is "best", each other one is "below" it (p < 0.05) or
    "tied". Tasks with fewer than two such cells stay unmarked."""
    marks: dict[tuple[int, str], Cell] = {}
    for task in {task for row in rows for task in row.cells}:
        ours = [
            (i, row.cells[task], _per_problem_counts(runs[run_id], judgement))
            for i, row in enumerate(rows)
            if row.source == "ours" and task in row.cells and row.cells[task].status == "final"
            for run_id in row.run_ids
            if runs[run_id].task == task
        ]
        groups: dict[frozenset[str], list] = {}
        for entry in ours:
            if entry[2]:
                groups.setdefault(frozenset(entry[2]), []).append(entry)
        if not groups:
            continue
        group = max(groups.values(), key=lambda g: (len(g[0][2]), len(g)))
        if len(group) < 2:
            continue
        best_index, best_cell, best_counts = max(group, key=lambda entry: entry[1].pass_at_1)
        for i, cell, counts in group:
            if i == best_index:
                marks[(i, task)] = replace(cell, vs_best="best")
            else:
                p = _p_value(counts, best_counts)
                verdict = "below" if p < SIGNIFICANCE_ALPHA else "tied"
                marks[(i, task)] = replace(cell, vs_best=verdict, vs_best_p=p)
    return [
        replace(row, cells={t: marks.get((i, t), c) for t, c in row.cells.items()})
        for i, row in enumerate(rows)
    ]


def build_leaderboard(
    runs: list[RunRecord],
    reference: Reference | None = None,
    significance: bool = False,
    judgement: str = "evalkit",
) -> Leaderboard:
    """Our runs beside the published rows of `reference`, sorted by mean Pass@1 (best first).

    `significance`: mark each of our final cells against the best of ours on its task (see the module).
    `judgement`: evalkit | official | both (see the module)."""
    if judgement not in JUDGEMENTS:
        raise EvalkitError(f"--judgement {judgement!r} is unknown; choose one of {', '.join(JUDGEMENTS)}")
    tasks = order_tasks({run.task for run in runs})
    by_model: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_model.setdefault(run.model, []).append(run)

    rows: list[Row] = []
    delta_tasks: set[str] = set()
    for model, model_runs in by_model.items():
        published_model = reference.match(model) if reference else None
        row_runs = _split_rows(model_runs)
        for tag, row in zip(_config_tags(row_runs), row_runs, strict=True):
            cells = {}
            for run in row:
                published = published_model.pass_at_1.get(run.task) if published_model else None
                cells[run.task] = _cell_for_run(run, published, judgement)
                if published is not None:
                    delta_tasks.add(run.task)
            rows.append(Row(model, "ours", tag, cells, tuple(r.run_id for r in row)))

    if reference:
        for ref_model in reference.models:
            cells = {
                task: Cell(status="published", pass_at_1=value, n=ref_model.n.get(task))
                for task, value in ref_model.pass_at_1.items()
                if task in tasks
            }
            if cells:
                rows.append(Row(ref_model.name, "published", reference.title, cells))

    if significance:
        rows = mark_significance(rows, {run.run_id: run for run in runs}, judgement)
    rows.sort(key=lambda row: -row.mean if row.mean is not None else math.inf)
    return Leaderboard(
        tasks=tasks,
        delta_tasks=tuple(t for t in tasks if t in delta_tasks),
        rows=tuple(rows),
        reference=reference,
        judgement=judgement,
    )


def leaderboard_frame(board: Leaderboard):  # -> pandas.DataFrame
    """The numbers behind the table, one row per leaderboard row (what --format csv writes)."""
    import pandas as pd

    records = []
    for row in board.rows:
        record: dict[str, Any] = {
            "model": row.model,
            "source": row.source,
            "config": row.config,
            "runs": " ".join(row.run_ids),
        }
        for task in board.tasks:
            cell = row.cells.get(task)
            record[f"{task}"] = cell.pass_at_1 if cell else None
            record[f"{task}_ci_low"] = cell.ci[0] if cell and cell.ci else None
            record[f"{task}_ci_high"] = cell.ci[1] if cell and cell.ci else None
            record[f"{task}_n"] = cell.n if cell else None
            record[f"{task}_status"] = cell.status if cell else ""
            if board.judgement == "both":
                official = cell.official if cell else None
                record[f"{task}_official"] = official
                ours = cell.pass_at_1 if cell and cell.status != "published" else None
                record[f"{task}_official_minus_ours"] = (
                    official - ours if official is not None and ours is not None else None
                )
            if task in board.delta_tasks:
                record[f"{task}_delta"] = cell.delta if cell else None
                record[f"{task}_published_outside_ci"] = (
                    cell.outside_ci if cell and cell.delta is not None else None
                )
            if any(r.cells.get(task) and r.cells[task].vs_best for r in board.rows):
                record[f"{task}_vs_best"] = cell.vs_best if cell else ""
                record[f"{task}_vs_best_p"] = cell.vs_best_p if cell else None
        record["mean"] = row.mean
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    for column in frame.columns:
        if column.endswith("_n"):
            frame[column] = frame[column].astype("Int64")
        elif column.endswith("_outside_ci"):
            frame[column] = frame[column].astype("boolean")
    # p-values keep their digits: rounded to 4 places a p of 2e-6 would read as 0
    numeric = [c for c in frame.select_dtypes("float").columns if not c.endswith("_vs_best_p")]
    frame[numeric] = frame[numeric].round(4)
    return frame
