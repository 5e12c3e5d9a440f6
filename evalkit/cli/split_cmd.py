"""The CLI side of a split run (`evalkit run --data-parallel N` / `--ray ADDRESS`): it hands the harness
(evalkit/parallel/) one ShardJob per shard and the way to run one (this package's worker), so the
wiring of tasks and backends stays here; then the parent scores once."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from evalkit.core.files import now_iso
from evalkit.core.records import Results
from evalkit.parallel.display import SplitProgress
from evalkit.parallel.finish import score_split
from evalkit.parallel.job import ShardJob, shard_jobs
from evalkit.parallel.split import Split, check_worker_count
from evalkit.parallel.watch import StoredSamples
from evalkit.planning import RunOptions, TaskPlan

# Backends that put a model on a device of this machine: their workers are pinned to GPUs.
DEVICE_BACKENDS = frozenset({"sambay", "hf", "vllm"})
WORKER_COMMAND = (sys.executable, "-m", "evalkit.cli.worker")

JobMaker = Callable[[int, "Sequence[int | None] | None"], list[ShardJob]]
Generated = tuple[list[dict[str, Any]], StoredSamples, dict[str, Any]]  # summaries, what is stored, notes


def run_split(
    split: Split,
    options: RunOptions,
    plans: list[TaskPlan],
    task_names: Sequence[str],
    backend_kwargs: dict[str, Any],
) -> list[tuple[TaskPlan, Results]]:
    """Generate every shard in parallel into the plans' folders, then score each task once."""
    from model_backends.registry import BACKENDS

    started = now_iso()
    device = str(backend_kwargs.get("device") or "auto")
    progress = SplitProgress(plans[0].config.task if len(plans) == 1 else f"{len(plans)} tasks")

    def jobs(count: int, threads: Sequence[int | None] | None = None) -> list[ShardJob]:
        return shard_jobs(
            options,
            plans,
            count,
            task_names=task_names,
            backend_kwargs=backend_kwargs,
            backend_module=BACKENDS[options.backend],  # the parent's entry: test backends work too
            threads=threads,
        )

    if split.data_parallel is not None:
        uses_device = options.backend in DEVICE_BACKENDS
        summaries, stored, notes = _local(split.data_parallel, plans, device, uses_device, jobs, progress)
    else:
        summaries, stored, notes = _ray(split, plans, device, jobs, progress)
    model_info = next((s["model_info"] for s in summaries if s.get("model_info")), None)
    return score_split(
        plans,
        stored,
        model_info=model_info,
        started=started,
        notes=notes,
        workers=options.workers,
        note=progress.note,
    )


def _prepare(plans: list[TaskPlan], count: int, progress: SplitProgress) -> StoredSamples:
    # The workers write config.json with their first sample (atomic, identical in every worker), so
    # an option every backend refuses leaves no folder behind, as in a single-process run.
    stored = StoredSamples(plans, count)
    if stored.stored:
        progress.note(f"resuming: {stored.stored}/{stored.total} samples already stored")
    return stored


def _local(
    count: int, plans: list[TaskPlan], device: str, uses_device: bool, jobs: JobMaker, progress: SplitProgress
) -> Generated:
    from evalkit.parallel.local import LocalWorkers
    from evalkit.parallel.placement import placements

    check_worker_count(count, plans, "--data-parallel")
    places = placements(count, device, uses_device)  # more workers than GPUs: refused here
    work = jobs(count, [place.threads for place in places])
    stored = _prepare(plans, count, progress)
    workers = LocalWorkers(work, places, WORKER_COMMAND, stored, progress)
    summaries = workers.run()
    notes = {"data_parallel": {"workers": count, "restarts": [w.restarts for w in workers.workers]}}
    return summaries, stored, notes


def _ray(
    split: Split, plans: list[TaskPlan], device: str, jobs: JobMaker, progress: SplitProgress
) -> Generated:
    from evalkit.cli.worker import run_shard
    from evalkit.parallel.ray_tasks import (
        RayShards,
        connect,
        default_reason,
        default_shards,
        require_ray,
        task_resources,
    )

    if split.ray_shards is not None:  # before Ray starts: a bad count costs nothing
        check_worker_count(split.ray_shards, plans, "--ray-shards")
    cluster = connect(str(split.ray))
    try:
        smallest = min(len(plan.problems) for plan in plans)
        count = split.ray_shards or min(default_shards(cluster, device), smallest)
        resources = task_resources(cluster, count, device)
        asks = ", ".join(f"{key.removeprefix('num_')}={value:g}" for key, value in resources.items())
        why = "" if split.ray_shards else f" ({default_reason(cluster, device)}; --ray-shards N to choose)"
        progress.note(f"{cluster.describe()}; {count} shard task(s){why}, each {asks}")
        stored = _prepare(plans, count, progress)
        summaries = RayShards(jobs(count, None), plans, run_shard, resources, stored, progress).run()
    finally:
        if cluster.started_here:
            require_ray().shutdown()
    hosts = sorted({s["host"] for s in summaries if s.get("host")})
    notes = {"ray": {"address": split.ray, "shards": count, "hosts": hosts}}
    return summaries, stored, notes
