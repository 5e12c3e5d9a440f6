"""plan -> generate -> store -> score -> metrics, for one or more tasks through one backend.

`plan_tasks` validates everything and loads the data without writing anything, so a bad option never
leaves a folder behind. `run` then creates the backend once, and for each task writes config.json,
streams the missing samples into the completions file, scores every stored sample and writes results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evalkit.core.errors import BackendError, EvalkitError
from evalkit.core.files import now_iso
from evalkit.core.identity import data_fingerprint
from evalkit.core.records import CheckerSpec, CompletionRecord, Results, ScoreRecord, ScoringInfo
from evalkit.core.run_config import RunConfig, Shard
from evalkit.core.run_folder import SCHEMA_VERSION, RunFolder
from evalkit.core.types import (
    Backend,
    Completion,
    GenerationRequest,
    Problem,
    SampleView,
    SamplingParams,
    derive_seed,
    sampling_problem,
    stable_hash,
)
from evalkit.progress import RunProgress, quick_correct
from evalkit.run_config import model_identity

_PROTOCOL = SamplingParams()  # the sampling defaults live in the core, once
CLI_NAMES = {"temperature": "--temperature", "top_p": "--top-p", "max_new_tokens": "--max-new-tokens"}
DEFAULT_OUT = "results"
_COLLECTED = {"model_info", "started", "wall_seconds", "shard"}  # generation keys collect() takes by name


@dataclass(frozen=True)
class RunOptions:
    """What `evalkit run` was asked for (None = the task's / protocol's default)."""

    backend: str
    tasks: tuple[str, ...]
    model: str | None = None
    revision: str | None = None
    n: int | None = None
    temperature: float = _PROTOCOL.temperature
    top_p: float = _PROTOCOL.top_p
    max_new_tokens: int = _PROTOCOL.max_new_tokens
    seed: int = 0
    prompt: str | None = None
    limit: int | None = None
    data_dir: str | None = None
    out: str = DEFAULT_OUT
    run_dir: str | None = None  # use exactly this folder (one task only) instead of <out>/<run_id>
    shard: Shard = field(default_factory=Shard)
    from_file: str | None = None
    workers: int | None = None


@dataclass
class TaskPlan:
    task: Any  # tasks.Task
    config: RunConfig
    problems: list[Problem]  # every problem of the run (after --limit), in task order
    shard: Shard
    folder: RunFolder

    @property
    def shard_problems(self) -> list[Problem]:
        return [p for position, p in enumerate(self.problems) if self.shard.keeps(position)]

    def problem_index(self) -> list[dict[str, Any]]:
        """Ids and breakdown metadata (never prompts or options) for config.json."""
        fields_ = self.task.metadata_fields
        return [
            {"id": p.id, **{f: p.metadata.get(f) for f in fields_ if f in p.metadata}} for p in self.problems
        ]


def validate_options(options: RunOptions) -> None:
    from model_backends.registry import BACKENDS

    if not options.tasks:
        raise EvalkitError("no task given; pass --task NAME (see `evalkit tasks`)")
    if options.backend not in BACKENDS:
        raise EvalkitError(
            f"unknown backend {options.backend!r}; choose one of: {', '.join(sorted(BACKENDS))}"
        )
    if options.n is not None and options.n < 1:
        raise EvalkitError(f"--n must be at least 1, got {options.n}")
    if options.limit is not None and options.limit < 1:
        raise EvalkitError(f"--limit must be at least 1, got {options.limit}")
    problem = sampling_problem(options.temperature, options.top_p, options.max_new_tokens, CLI_NAMES)
    if problem is not None:
        raise EvalkitError(problem)
    if options.workers is not None and options.workers < 1:
        raise EvalkitError(f"--workers must be at least 1, got {options.workers}")
    if options.run_dir is not None and len(options.tasks) > 1:
        raise EvalkitError("--run-dir names one task's folder; pass a single --task with it")
    if len(set(options.tasks)) != len(options.tasks):
        raise EvalkitError("a task is named twice; pass each --task once")


def plan_tasks(options: RunOptions) -> list[TaskPlan]:
    """Validate, load every task's problems and build its RunConfig; writes nothing."""
    from evalkit.scoring import CHECKER_VERSION
    from tasks import get_task

    validate_options(options)
    tasks = [get_task(name) for name in options.tasks]  # unknown names fail before anything loads
    for task in tasks:
        task.template(options.prompt)  # unknown prompt name -> one-line error
    model, revision = model_identity(options.backend, options.model, options.revision, options.from_file)
    plans = []
    for task in tasks:
        problems = task.load(options.data_dir, prompt=options.prompt)
        limit = options.limit if options.limit is not None and options.limit < len(problems) else None
        problems = problems[:limit] if limit is not None else problems
        config = RunConfig(
            model=model,
            model_revision=revision,
            backend=options.backend,
            task=task.name,
            data_fingerprint=data_fingerprint(problems),
            prompt_name=options.prompt or task.default_prompt,
            prompt_hash=task.prompt_hash(options.prompt),
            n=options.n if options.n is not None else task.default_n,
            temperature=options.temperature,
            top_p=options.top_p,
            max_new_tokens=options.max_new_tokens,
            seed=options.seed,
            checker_version=CHECKER_VERSION,
            limit=limit,  # a limit covering every problem is no limit: same run, same run_id
        )
        folder = RunFolder(Path(options.run_dir) if options.run_dir else Path(options.out) / config.run_id)
        folder.check_compatible(config)
        plans.append(TaskPlan(task, config, problems, options.shard, folder))
    return plans


def backend_options(options: RunOptions, **cli_extra: Any):
    from model_backends.registry import BackendOptions

    extra = {k: v for k, v in cli_extra.items() if v is not None}
    return BackendOptions(
        model=options.model,
        revision=options.revision,
        from_file=options.from_file,
        **extra,
    )


# -- requests -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where a request's completions belong."""

    problem: Problem
    views: dict[int, SampleView]
    seeds: dict[int, int]


def build_requests(
    plan: TaskPlan, stored: set[tuple[str, int]]
) -> tuple[list[GenerationRequest], dict[str, Route]]:
    """Requests for every (problem, sample) of this shard not yet stored.

    Tasks whose prompt is the same for every sample get ONE request per problem holding all missing
    sample indices (the engine prefills once and forks); tasks with per-sample prompts (GPQA's option
    order) get one request per sample, id "<problem>#<sample>".
    """
    config, task = plan.config, plan.task
    sampling = SamplingParams(config.temperature, config.top_p, config.max_new_tokens)
    shared_prompt = not task.per_sample_prompts
    requests, routes = [], {}
    for problem in plan.shard_problems:
        missing = [i for i in range(config.n) if (problem.id, i) not in stored]
        if not missing:
            continue
        seeds = {i: derive_seed(config.seed, config.task, problem.id, i) for i in missing}
        views = {i: task.sample_view(problem, i, config.seed) for i in missing}
        groups = [(problem.id, missing)] if shared_prompt else [(f"{problem.id}#{i}", [i]) for i in missing]
        for request_id, indices in groups:
            requests.append(
                GenerationRequest(
                    request_id=request_id,
                    messages=views[indices[0]].messages,
                    sample_indices=tuple(indices),
                    seeds=tuple(seeds[i] for i in indices),
                    sampling=sampling,
                )
            )
            routes[request_id] = Route(
                problem, {i: views[i] for i in indices}, {i: seeds[i] for i in indices}
            )
    return requests, routes


def completion_record(completion: Completion, route: Route) -> CompletionRecord:
    index = completion.sample_index
    if index not in route.views:
        raise BackendError(
            f"backend returned sample {index} for request {completion.request_id!r}, which did not ask for it"
        )
    view = route.views[index]
    return CompletionRecord(
        problem_id=route.problem.id,
        sample_index=index,
        seed=route.seeds[index],
        prompt_hash=stable_hash(list(view.messages)),
        text=completion.text,
        num_prompt_tokens=completion.num_prompt_tokens,
        num_generated_tokens=completion.num_generated_tokens,
        finish_reason=completion.finish_reason,
        seconds=completion.seconds,
        gold=view.gold,
        permutation=view.permutation,
        extra=completion.extra,
    )


@dataclass
class GenerationStats:
    generated_samples: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0
    last_tokens: int = 0
    last_looks_correct: bool = False


def _store(
    completion: Completion,
    routes: dict[str, Route],
    stored: set[tuple[str, int]],
    out: Any,
    stats: GenerationStats,
) -> bool:
    """Append one completion unless it is already stored; True when it was written."""
    if completion.request_id not in routes:
        raise BackendError(f"backend returned an unknown request id {completion.request_id!r}")
    record = completion_record(completion, routes[completion.request_id])
    if record.key in stored:  # a backend that repeats itself must not create duplicates
        return False
    out.append(record)
    stored.add(record.key)
    stats.generated_samples += 1
    stats.generated_tokens += int(record.num_generated_tokens)
    stats.last_tokens = int(record.num_generated_tokens)
    stats.last_looks_correct = quick_correct(record.text, record.gold)
    return True


def generate_missing(
    plan: TaskPlan, backend: Backend, progress: RunProgress | None = None
) -> GenerationStats:
    """Stream this shard's missing samples from the backend into the run folder (one fsync per sample)."""
    stats = GenerationStats()
    with plan.folder.appender(plan.shard) as out:  # drops a torn last line first
        stored = {r.key for r in plan.folder.completions()}
        shard_ids = {p.id for p in plan.shard_problems}
        total = len(shard_ids) * plan.config.n
        already = sum(1 for pid, i in stored if pid in shard_ids and i < plan.config.n)
        requests, routes = build_requests(plan, stored)
        if progress:
            progress.start_task(plan.config.task, total=total, done=already)
        started = time.perf_counter()
        try:
            for completion in backend.generate(requests) if requests else ():
                if _store(completion, routes, stored, out, stats) and progress:
                    progress.advance(stats.last_tokens, stats.last_looks_correct)
        except EvalkitError as err:
            # What was stored stays stored: say so, so the user knows re-running resumes.
            raise type(err)(
                f"{err} ({stats.generated_samples} new samples were stored in {plan.folder.path}; "
                "re-run the same command to resume)"
            ) from err
        finally:
            stats.seconds = time.perf_counter() - started
            if progress:
                progress.finish_task()
    return stats


# -- scoring and results --------------------------------------------------------------------------------


def score_folder(
    folder: RunFolder,
    *,
    workers: int | None = None,
    mode: str = "evalkit",
    generation: dict[str, Any] | None = None,
    on_scored: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Score every stored completion, write scores.jsonl and results.json; return the results dict.

    `generation` is this session's provenance; without it (re-scoring) the previous provenance is kept.
    """
    from evalkit.metrics import compute_metrics
    from evalkit.provenance import collect
    from evalkit.scoring import CHECKER_VERSION, ScoreItem, score_many
    from tasks import get_task

    config = folder.config()
    checker = folder.checker()
    answer_type = checker.answer_type if checker is not None else get_task(config.task).answer_type
    problems = folder.problems()
    position = {p["id"]: i for i, p in enumerate(problems)}
    records = [r for r in folder.completions() if r.problem_id in position and 0 <= r.sample_index < config.n]
    records.sort(key=lambda r: (position[r.problem_id], r.sample_index))
    items = [ScoreItem(gold=r.gold, response=r.text, answer_type=answer_type) for r in records]
    verdicts = score_many(items, workers=workers, mode=mode, progress=on_scored)
    scores = [
        ScoreRecord(
            problem_id=r.problem_id,
            sample_index=r.sample_index,
            correct=bool(v.correct),
            extracted=v.extracted,
            reason=v.reason,
            gold=r.gold,
            finish_reason=r.finish_reason,
            num_generated_tokens=r.num_generated_tokens,
            permutation=r.permutation,
        )
        for r, v in zip(records, verdicts, strict=True)
    ]
    folder.write_scores(scores)
    metrics = compute_metrics(
        [s.to_dict() for s in scores],
        task=config.task,
        n=config.n,
        problem_metadata={p["id"]: {k: v for k, v in p.items() if k != "id"} for p in problems},
        problem_ids=[p["id"] for p in problems],
        seed=config.seed,
        answer_type=answer_type,
    )
    scoring = ScoringInfo(CHECKER_VERSION, mode, len(scores), now_iso())
    if generation is None and folder.has_results():
        provenance = replace(folder.results().provenance, scoring=scoring)
    else:
        generation = generation or {}
        provenance = collect(
            model_info=generation.get("model_info"),
            started=generation.get("started"),
            ended=now_iso(),
            wall_seconds=generation.get("wall_seconds"),
            generated_tokens=sum(int(r.num_generated_tokens) for r in records),
            shard=generation.get("shard"),
            scoring=scoring,
            **{k: v for k, v in generation.items() if k not in _COLLECTED},
        )
    results = Results(SCHEMA_VERSION, config.run_id, config, provenance, bool(metrics["complete"]), metrics)
    folder.write_results(results)
    return results


def run(
    options: RunOptions,
    backend_factory: Callable[[], Backend],
    progress: RunProgress | None = None,
    plans: list[TaskPlan] | None = None,
) -> list[tuple[TaskPlan, dict[str, Any]]]:
    """Run every task through one backend; returns (plan, results) per task."""
    plans = plans if plans is not None else plan_tasks(options)
    backend = backend_factory()
    model_info = backend.model_info()
    outcomes = []
    for plan in plans:
        started_iso, started = now_iso(), time.perf_counter()
        plan.folder.initialise(plan.config, plan.problem_index(), checker=CheckerSpec(plan.task.answer_type))
        stats = generate_missing(plan, backend, progress)
        generation = {
            "model_info": model_info,
            "started": started_iso,
            "wall_seconds": round(time.perf_counter() - started, 3),
            "shard": None if plan.shard.is_whole else plan.shard.label,
            "generated_this_session": stats.generated_samples,
        }
        if progress:
            progress.note(f"{plan.config.task}: scoring {plan.folder.path}")
        results = score_folder(plan.folder, workers=options.workers, generation=generation)
        outcomes.append((plan, results))
    return outcomes
