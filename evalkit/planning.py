"""Planning a run: `evalkit run`'s options + the Task objects -> one TaskPlan per task; writes nothing.

Everything that can be wrong with the options or the data fails here, before any folder exists, so a bad
option never leaves a folder behind (the one thing touched is a probe folder, made and removed at once to
learn whether the output folder can be written). The CLI resolves task names to Task objects and checks the backend
name; this module sees only the `evalkit.core.types.Task` protocol.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.errors import EvalkitError
from evalkit.core.files import check_writable_folder
from evalkit.core.identity import content_hash, data_fingerprint
from evalkit.core.records import CheckerSpec
from evalkit.core.run_config import LEGACY_CHECKER_VERSIONS, RunConfig, Shard
from evalkit.core.run_folder import RunFolder
from evalkit.core.types import Problem, SamplingParams, Task, sampling_problem

_PROTOCOL = SamplingParams()  # the sampling defaults live in the core, once
CLI_NAMES = {"temperature": "--temperature", "top_p": "--top-p", "max_new_tokens": "--max-new-tokens"}
DEFAULT_OUT = "results"


@dataclass(frozen=True)
class RunOptions:
    """What `evalkit run` was asked for besides the tasks (None = the task's / protocol's default)."""

    backend: str
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
    # --strict-thinking / --no-strict-thinking; None: the folder's recorded choice (a new folder: off)
    strict_thinking: bool | None = None


@dataclass
class TaskPlan:
    task: Task
    config: RunConfig
    problems: list[Problem]  # every problem of the run (after --limit), in task order
    shard: Shard
    folder: RunFolder
    # What scoring needs and how to check (answer type, checker version and options); a new folder's
    # config.json records it, so re-scoring never asks the task.
    checker: CheckerSpec

    @property
    def shard_problems(self) -> list[Problem]:
        return [p for position, p in enumerate(self.problems) if self.shard.keeps(position)]

    def problem_index(self) -> list[dict[str, Any]]:
        """Ids and breakdown metadata (never prompts or options) for config.json."""
        fields_ = self.task.metadata_fields
        return [
            {"id": p.id, **{f: p.metadata.get(f) for f in fields_ if f in p.metadata}} for p in self.problems
        ]


def validate_options(options: RunOptions, tasks: Sequence[Task]) -> None:
    if not tasks:
        raise EvalkitError("no task given; pass --task NAME (see `evalkit tasks`)")
    if options.n is not None and options.n < 1:
        raise EvalkitError(f"--n must be at least 1, got {options.n}")
    if options.limit is not None and options.limit < 1:
        raise EvalkitError(f"--limit must be at least 1, got {options.limit}")
    problem = sampling_problem(options.temperature, options.top_p, options.max_new_tokens, CLI_NAMES)
    if problem is not None:
        raise EvalkitError(problem)
    if options.workers is not None and options.workers < 1:
        raise EvalkitError(f"--workers must be at least 1, got {options.workers}")
    if options.run_dir is not None and len(tasks) > 1:
        raise EvalkitError("--run-dir names one task's folder; pass a single --task with it")
    names = [task.name for task in tasks]
    if len(set(names)) != len(names):
        raise EvalkitError("a task is named twice; pass each --task once")


def plan_tasks(options: RunOptions, tasks: Sequence[Task]) -> list[TaskPlan]:
    """Validate, load every task's problems and build its RunConfig; writes nothing."""
    validate_options(options, tasks)
    if options.run_dir is None:
        check_writable_folder(Path(options.out), "--out")
    for task in tasks:
        task.prompt_hash(options.prompt)  # unknown prompt name -> one-line error, before any data loads
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
            limit=limit,  # a limit covering every problem is no limit: same run, same run_id
            task_definition=task.definition,
        )
        config, folder = find_folder(config, options)
        folder.check_compatible(config)
        # Before any model loads: a folder that cannot be written fails now, not after an hour of loading.
        check_writable_folder(folder.path, "--run-dir" if options.run_dir else "--out")
        checker = checker_spec(task.answer_type, folder, options.strict_thinking)
        plans.append(TaskPlan(task, config, problems, options.shard, folder, checker))
    return plans


def find_folder(config: RunConfig, options: RunOptions) -> tuple[RunConfig, RunFolder]:
    """The run's folder, and the config to resume it with: `--run-dir`, else <out>/<run_id>; a folder
    written before the checker left the run_id (its config.json has "checker_version") is resumed under
    its old config, found at <out>/<legacy run_id> (checker 2, then 1) when no folder has the new one."""
    if options.run_dir:
        folder = RunFolder(Path(options.run_dir))
        stored = folder.header_dict() if folder.exists() else None
        version = (stored.get("config") or {}).get("checker_version") if isinstance(stored, dict) else None
        return (config.legacy(str(version)) if version is not None else config), folder
    folder = RunFolder(Path(options.out) / config.run_id)
    if not folder.exists():
        for version in LEGACY_CHECKER_VERSIONS:
            legacy = config.legacy(version)
            old = RunFolder(Path(options.out) / legacy.run_id)
            if old.exists():
                return legacy, old
    return config, folder


def checker_spec(answer_type: str, folder: RunFolder, strict_thinking: bool | None) -> CheckerSpec:
    """The checker of this run: the current version, and the options given, else the folder's."""
    from evalkit.scoring import CHECKER_VERSION, CheckerOptions

    stored = folder.checker() if folder.exists() else None
    if strict_thinking is not None:
        options = CheckerOptions(strict_thinking=strict_thinking).as_dict()
    else:
        options = stored.options if stored is not None else CheckerOptions().as_dict()
    return CheckerSpec(answer_type, CHECKER_VERSION, options)


def looks_like_path(model: str) -> bool:
    """A local path rather than a Hub id ("org/name") or a served model name."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model


def model_identity(
    backend: str, model: str | None, revision: str | None, from_file: str | None
) -> tuple[str, str]:
    """(model, model_revision) for the RunConfig; a missing local path is a user error.

    A local folder is named by its folder name and identified by its content hash (evalkit.core.identity,
    the same hash the backends report), so the same checkpoint at another path gives the same run_id; a
    single-file checkpoint (hf: a GGUF file) likewise by its file name and the sha256 of its bytes.
    """
    if backend == "replay":
        if not from_file:
            raise EvalkitError("the replay backend needs --from FILE (a completions JSONL)")
        path = Path(from_file).expanduser()
        if not path.is_file():
            raise EvalkitError(f"--from {from_file}: no such file; pass a completions JSONL")
        return model or f"replay:{path.name}", revision or content_hash(path)
    if not model:
        raise EvalkitError(f"the {backend} backend needs --model (a Hub id or a local folder)")
    local = Path(model).expanduser()
    if local.is_dir():
        return local.resolve().name, revision or content_hash(local)
    if backend == "hf" and local.is_file():  # a single-file checkpoint (GGUF); the backend checks its form
        try:
            return local.name, revision or content_hash(local)
        except OSError as err:
            raise EvalkitError(
                f"--model {model}: cannot read it ({err.strerror or err}); check the file's permissions"
            ) from None
    if backend in ("sambay", "hf", "vllm") and (local.exists() or looks_like_path(model)):
        if backend == "hf" and local.name.lower().endswith(".gguf"):
            raise EvalkitError(f"--model {model}: no such file; pass the path of an existing .gguf file")
        also = ", a .gguf file" if backend == "hf" else ""
        raise EvalkitError(
            f"--model {model}: no such folder; pass a checkpoint folder with config.json{also} or a Hub id"
        )
    return model, revision or "none"
