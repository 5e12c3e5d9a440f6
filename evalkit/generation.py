"""Generation: the requests a plan still needs, streamed through a Backend into the run folder.

Resume is at sample level: only (problem, sample index) pairs not yet stored are requested, each with its
own seed (derive_seed), so a resumed or sharded run draws exactly the samples of one uninterrupted run.
Every completion is appended (fsync'd) the moment it arrives; an error keeps what was stored and says
how many samples that is and what a re-run does.

A new run folder is created when its first sample arrives, not before: a run that fails before its
first sample (a server that is down, a bad option the backend found) leaves no folder behind.
A private task's (Task.private) completions have any prompt text removed from `extra` (core.privacy).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from evalkit.core.errors import BackendError, EvalkitError, describe_os_error
from evalkit.core.privacy import PromptText, has_long_strings, redact
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


def completion_record(completion: Completion, route: Route, private: bool = False) -> CompletionRecord:
    """The stored form of a completion; `private`: any prompt text in `extra` is replaced by a hash."""
    index = completion.sample_index
    if index not in route.views:
        raise BackendError(
            f"backend returned sample {index} for request {completion.request_id!r}, which did not ask for it"
        )
    view = route.views[index]
    extra = completion.extra
    if private and has_long_strings(extra):
        extra = redact(extra, PromptText(m["content"] for m in view.messages))
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
        extra=extra,
    )


@dataclass
class GenerationStats:
    generated_samples: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0
    last_tokens: int = 0
    last_looks_correct: bool = False


class LazyAppender:
    """The plan's completions file, opened at once when its folder exists (resume: the lock is taken and
    a torn tail dropped before anything is read), else created with the folder's config.json when the
    first sample arrives."""

    def __init__(self, plan: TaskPlan) -> None:
        self.plan = plan
        self._out: CompletionAppender | None = None
        if plan.folder.exists():
            self._open()

    def _open(self) -> CompletionAppender:
        if self._out is None:
            plan = self.plan
            plan.folder.initialise(plan.config, plan.problem_index(), checker=plan.checker)
            self._out = plan.folder.appender(plan.shard)
        return self._out

    def append(self, record: CompletionRecord) -> None:
        self._open().append(record)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


def _store(
    completion: Completion,
    routes: dict[str, Route],
    stored: set[tuple[str, int]],
    out: LazyAppender,
    stats: GenerationStats,
    private: bool,
) -> bool:
    """Append one completion unless it is already stored; True when it was written."""
    if completion.request_id not in routes:
        raise BackendError(f"backend returned an unknown request id {completion.request_id!r}")
    record = completion_record(completion, routes[completion.request_id], private)
    if record.key in stored:  # a backend that repeats itself must not create duplicates
        return False
    out.append(record)
    stored.add(record.key)
    stats.generated_samples += 1
    stats.generated_tokens += int(record.num_generated_tokens)
    stats.last_tokens = int(record.num_generated_tokens)
    stats.last_looks_correct = quick_correct(record.text, record.gold)
    return True


def stored_note(plan: TaskPlan, new: int, stored: int, total: int) -> str:
    """What is on disk after a stop, and what re-running the same command does: true in every case."""
    folder = plan.folder
    if not folder.exists():
        return "nothing was stored and no run folder was written"
    missing = total - stored
    what = f"{new} new samples were stored" if new else "no new samples were stored"
    note = (
        f"{what} in {folder.path} ({stored}/{total} now); re-running the same command keeps them and "
        f"generates only the {missing} missing"
    )
    if plan.config.backend == "replay":  # the file is the run's model: its hash is in the run_id
        note += " (from the same --from file: a changed file is another run, with its own folder)"
    return note


def _stopped(err: BaseException, note: str) -> EvalkitError:
    """The error to raise when generation stops: the cause in words, then what is stored."""
    if isinstance(err, OSError):
        return EvalkitError(f"{describe_os_error(err)}; {note}")
    message = f"{err} ({note})"
    try:
        return type(err)(message)
    except TypeError:  # an EvalkitError subclass with another constructor
        return EvalkitError(message)


def generate_missing(
    plan: TaskPlan, backend: Backend, progress: RunProgress | None = None
) -> GenerationStats:
    """Stream this shard's missing samples from the backend into the run folder (one fsync per sample)."""
    stats = GenerationStats()
    private = bool(plan.task.private)
    out = LazyAppender(plan)  # drops a torn last line first
    try:
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
                if _store(completion, routes, stored, out, stats, private) and progress:
                    progress.advance(stats.last_tokens, stats.last_looks_correct)
        except (EvalkitError, OSError) as err:
            # What was stored stays stored: say how much, and what a re-run does.
            note = stored_note(plan, stats.generated_samples, already + stats.generated_samples, total)
            raise _stopped(err, note) from err
        finally:
            stats.seconds = time.perf_counter() - started
            if progress:
                progress.finish_task()
    finally:
        out.close()
    return stats
