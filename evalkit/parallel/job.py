"""ShardJob: what one worker needs to run its shard exactly as the parent planned it (picklable)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evalkit.core.run_config import Shard
from evalkit.core.settings import resolve_data_dir
from evalkit.planning import RunOptions, TaskPlan

PARENT_PID_ENV = "EVALKIT_WORKER_PARENT"  # a --data-parallel worker's parent: it exits when that one dies
# Settings read from the environment that must be the same in every worker (another node has its own).
_PASSED_ENV_PREFIX = "EVALKIT_"


@dataclass(frozen=True)
class ShardJob:
    """One shard of a split run. The worker plans again from `options` (its own shard) and refuses to
    run when its plans' run_ids differ from `run_ids`, the parent's: the samples are then exactly the
    single process's, and a node with other data or another evalkit fails instead of mixing runs."""

    options: RunOptions
    task_names: tuple[str, ...]
    backend_kwargs: dict[str, Any]  # the backend-only flags of `evalkit run` (base_url, device, ...)
    backend_module: str  # the parent's registry entry for options.backend (test backends included)
    run_ids: tuple[str, ...]
    threads: int | None = None  # CPU threads for this worker; None leaves the default
    environment: dict[str, str] = field(default_factory=dict)  # EVALKIT_* settings of the parent
    marker: str | None = None  # Ray: the token of the marker file the driver wrote in each run folder

    @property
    def shard(self) -> Shard:
        return self.options.shard


def _absolute(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else path


def portable_options(options: RunOptions) -> RunOptions:
    """The same options with every local path absolute and the data folder explicit, so a worker with
    another working directory (a Ray worker) or without the parent's environment reads the same files.
    None of these is part of the RunConfig: the run_id does not change."""
    model = options.model
    if model and Path(model).expanduser().exists():
        model = _absolute(model)
    data_dir = resolve_data_dir(options.data_dir)
    return replace(
        options,
        model=model,
        out=_absolute(options.out) or options.out,
        run_dir=_absolute(options.run_dir),
        from_file=_absolute(options.from_file),
        data_dir=str(data_dir.resolve()) if data_dir is not None else None,
    )


def shard_jobs(
    options: RunOptions,
    plans: Sequence[TaskPlan],
    count: int,
    *,
    task_names: Sequence[str],
    backend_kwargs: dict[str, Any],
    backend_module: str,
    threads: Sequence[int | None] | None = None,
    marker: str | None = None,
) -> list[ShardJob]:
    """One job per shard 1..count of the planned run."""
    base = portable_options(options)
    environment = {k: v for k, v in os.environ.items() if k.startswith(_PASSED_ENV_PREFIX)}
    run_ids = tuple(plan.config.run_id for plan in plans)
    return [
        ShardJob(
            options=replace(base, shard=Shard(index, count)),
            task_names=tuple(task_names),
            backend_kwargs=dict(backend_kwargs),
            backend_module=backend_module,
            run_ids=run_ids,
            threads=threads[index - 1] if threads else None,
            environment=environment,
            marker=marker,
        )
        for index in range(1, count + 1)
    ]
