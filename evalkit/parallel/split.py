"""How a run is split (`--data-parallel N`, `--ray ADDRESS [--ray-shards N]`) and the checks that refuse a
bad combination with one line before anything heavy starts (no data loaded, no model, no folder)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from evalkit.core.errors import EvalkitError
from evalkit.core.run_config import Shard
from evalkit.planning import TaskPlan


@dataclass(frozen=True)
class Split:
    data_parallel: int | None = None  # worker processes on this machine
    ray: str | None = None  # "local", "auto" or a cluster address
    ray_shards: int | None = None  # with --ray: how many shards (default: from the cluster)

    @property
    def active(self) -> bool:
        return self.data_parallel is not None or self.ray is not None


def check_split(split: Split, shard: Shard, backend: str) -> None:
    """Option combinations that cannot work, each refused with the fix."""
    if split.data_parallel is not None and split.data_parallel < 1:
        raise EvalkitError(
            f"--data-parallel must be at least 1 (worker processes), got {split.data_parallel}"
        )
    if split.ray_shards is not None and split.ray is None:
        raise EvalkitError(
            "--ray-shards sets how many Ray tasks --ray runs; pass --ray ADDRESS (or local) too"
        )
    if split.ray_shards is not None and split.ray_shards < 1:
        raise EvalkitError(f"--ray-shards must be at least 1, got {split.ray_shards}")
    if split.ray is not None and not split.ray.strip():
        raise EvalkitError("--ray needs an address: local (start Ray here), auto, or HOST:PORT of a cluster")
    if split.data_parallel is not None and split.ray is not None:
        raise EvalkitError(
            "--data-parallel runs worker processes on this machine and --ray runs Ray tasks on a cluster; "
            "choose one (with --ray, --ray-shards sets the number of shards)"
        )
    flag = "--data-parallel" if split.data_parallel is not None else "--ray"
    if split.active and not shard.is_whole:
        raise EvalkitError(
            f"--shard {shard.label} runs one shard and {flag} runs every shard of the run; pass one of the two"
        )
    if split.active and backend == "replay":
        raise EvalkitError(
            f"the replay backend reads --from FILE and generates nothing, so {flag} has nothing to split; "
            f"drop {flag}"
        )


def check_worker_count(count: int, plans: Sequence[TaskPlan], flag: str) -> None:
    """Each shard must hold at least one problem of every task (shards are by problem)."""
    smallest = min(plans, key=lambda plan: len(plan.problems))
    problems = len(smallest.problems)
    if count > problems:
        raise EvalkitError(
            f"{flag} {count} is more workers than the {problems} problems of {smallest.config.task} "
            f"(shards are by problem); use {flag} {problems} or fewer"
        )
