"""Generation: the requests a plan still needs, streamed through a Backend into the run folder.

Resume is at sample level: only (problem, sample index) pairs not yet stored are requested, each with its
own seed (derive_seed), so a resumed or sharded run draws exactly the samples of one uninterrupted run.
Every completion is appended (fsync'd) the moment it arrives; an error keeps what was stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from evalkit.core.errors import BackendError, EvalkitError
from evalkit.core.records import CompletionRecord
from evalkit.core.run_folder import CompletionAppender
from evalkit.core.types import (
    Backend,
    Completion,
    GenerationRequest,
    Problem,
    SampleView,
    SamplingParams,
    derive_seed,
    stable_hash,
)
from evalkit.planning import TaskPlan
from evalkit.progress import RunProgress, quick_correct


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
    run_seed = config.generation_seed  # a pooled run refuses here, before anything is generated
    requests, routes = [], {}
    for problem in plan.shard_problems:
        missing = [i for i in range(config.n) if (problem.id, i) not in stored]
        if not missing:
            continue
        seeds = {i: derive_seed(run_seed, config.task, problem.id, i) for i in missing}
        views = {i: task.sample_view(problem, i, run_seed) for i in missing}
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
    out: CompletionAppender,
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
