"""`--ray ADDRESS`: the shards of a run as Ray tasks (Ray schedules, places and retries; evalkit only
says what one shard is).

Each task asks for one GPU (`num_gpus=1`; Ray sets its CUDA_VISIBLE_DEVICES) or, on a cluster without
GPUs (or --device cpu), its share of the CPUs (`num_cpus`, also its torch threads). A task whose worker
process or node dies is retried by Ray (`max_retries`); an exception raised by the shard itself (a bad
option, a backend that refuses, a folder it cannot see) is not retried (`retry_exceptions=False`): it
would fail the same way again. `max_calls=1` gives every task a fresh process, so a finished shard
frees its GPU.

The run folder must be on storage every node mounts at the same path: the driver writes a marker file
in each run folder and every task checks it sees that marker before it generates anything.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from evalkit.core.errors import EvalkitError
from evalkit.parallel.display import SplitProgress
from evalkit.parallel.job import ShardJob
from evalkit.parallel.watch import StoredSamples
from evalkit.planning import TaskPlan

MAX_RETRIES = 3
_POLL_SECONDS = 0.3
EXTRA_HINT = "pip install 'evalkit[ray]'"


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EvalkitError(f"--ray needs Ray, an optional extra: {EXTRA_HINT}") from None
    return ray


@dataclass(frozen=True)
class Cluster:
    address: str
    nodes: int
    cpus: int
    gpus: int
    largest_node_cpus: int
    started_here: bool

    def describe(self) -> str:
        where = "a local Ray instance" if self.started_here else f"the Ray cluster at {self.address}"
        return f"ray: {where}, {self.nodes} node(s), {self.cpus} CPUs, {self.gpus} GPUs"


def connect(address: str) -> Cluster:
    """Join (or, for 'local', start) a Ray cluster; a driver already connected (a notebook, a test)
    keeps its connection."""
    ray = require_ray()
    started_here = False
    if not ray.is_initialized():
        target = "local" if address == "local" else address
        try:
            ray.init(address=target, include_dashboard=False, logging_level="WARNING")  # task output shown
        except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError...
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise EvalkitError(
                f"--ray {address}: cannot join a Ray cluster ({first}); start one with `ray start --head` "
                "and pass its address (or auto), or use --ray local"
            ) from None
        started_here = address == "local"
    alive = [node for node in ray.nodes() if node.get("Alive")]
    resources = ray.cluster_resources()
    return Cluster(
        address=address,
        nodes=len(alive),
        cpus=int(resources.get("CPU", 0)),
        gpus=int(resources.get("GPU", 0)),
        largest_node_cpus=max((int(n.get("Resources", {}).get("CPU", 0)) for n in alive), default=0),
        started_here=started_here,
    )


def task_resources(cluster: Cluster, shards: int, device: str) -> dict[str, float]:
    """One GPU per task when the cluster has GPUs (and the device is not cpu); else a CPU share that
    fits on one node (a task asking for more than any node has would never start)."""
    if cluster.gpus > 0 and device != "cpu":
        return {"num_gpus": 1, "num_cpus": 1}
    share = max(1, cluster.cpus // shards)
    return {"num_cpus": max(1, min(share, cluster.largest_node_cpus))}


def default_shards(cluster: Cluster, device: str) -> int:
    """One shard per GPU; without GPUs one per node (each with that node's cores: a CPU replica per
    core would hold the model once per core)."""
    if cluster.gpus > 0 and device != "cpu":
        return cluster.gpus
    return max(1, cluster.nodes)


def default_reason(cluster: Cluster, device: str) -> str:
    return "one per GPU" if cluster.gpus > 0 and device != "cpu" else "one per node, on CPUs"


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _cause(err: Exception) -> str:
    cause = getattr(err, "cause", None)
    if isinstance(cause, EvalkitError):
        return str(cause)
    text = str(cause if cause is not None else err).strip().splitlines()
    return text[-1] if text else type(err).__name__


class RayShards:
    """Submits one task per job, follows the shard files and the tasks, returns the summaries."""

    def __init__(
        self,
        jobs: Sequence[ShardJob],
        plans: Sequence[TaskPlan],
        run_shard: Callable[[ShardJob], dict[str, Any]],
        resources: dict[str, float],
        stored: StoredSamples,
        progress: SplitProgress,
    ) -> None:
        self.plans, self.stored, self.progress = list(plans), stored, progress
        self.token = secrets.token_hex(8)
        self.jobs = [replace(job, marker=self.token) for job in jobs]
        threads = int(resources["num_cpus"]) if "num_gpus" not in resources else None
        self.jobs = [replace(job, threads=threads) for job in self.jobs]
        self.run_shard = run_shard
        self.resources = resources

    def run(self) -> list[dict[str, Any]]:
        ray = require_ray()
        from ray.exceptions import RayError, RayTaskError

        # Folders the markers create are removed again if nothing else was written into them.
        created = {
            p for plan in self.plans for p in (plan.folder.path, plan.folder.path.parent) if not p.exists()
        }
        for plan in self.plans:
            plan.folder.write_marker(self.token, f"written by the evalkit driver on {socket.gethostname()}\n")
        remote = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False, max_calls=1, **self.resources)(
            self.run_shard
        )
        refs = {remote.remote(job): index for index, job in enumerate(self.jobs)}
        states = ["queued"] * len(self.jobs)
        summaries: list[dict[str, Any]] = [{} for _ in self.jobs]
        pending = list(refs)
        at_start = list(self.stored.done)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=_POLL_SECONDS)
                for ref in ready:
                    index = refs[ref]
                    label = self.jobs[index].shard.label
                    try:
                        summaries[index] = ray.get(ref)
                    except RayTaskError as err:  # the shard raised: not retried
                        raise EvalkitError(f"shard {label}: {_cause(err)}") from None
                    except RayError as err:  # its worker or node was lost more often than Ray retries
                        raise EvalkitError(
                            f"shard {label}: its Ray task was lost {_times(MAX_RETRIES + 1)} "
                            f"({type(err).__name__}: {_cause(err)}); its stored samples are kept: re-run the "
                            "same command to resume"
                        ) from None
                    states[index] = "done"
                    self.progress.note(f"shard {label}: done on {summaries[index].get('host', '?')}")
                self.stored.poll()
                for index, state in enumerate(states):
                    if state == "queued" and self.stored.done[index + 1] > at_start[index + 1]:
                        states[index] = "generating"
                self.progress.update(self.stored, states)
            self.stored.poll()
            self.progress.update(self.stored, states, force=True)
        finally:
            self.progress.close()
            for ref in pending:
                ray.cancel(ref, force=True)
            for plan in self.plans:
                plan.folder.remove_marker(self.token)
            for path in sorted(created, key=lambda p: len(p.parts), reverse=True):  # children first
                # rmdir refuses a folder that holds anything
                with contextlib.suppress(OSError):
                    path.rmdir()
        return summaries
