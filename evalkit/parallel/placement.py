"""Where each local worker runs: its own GPU (CUDA_VISIBLE_DEVICES set to one of the parent's visible
devices) or, on CPU, its share of the cores (OMP_NUM_THREADS = usable cores // N, at least 1)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.core.errors import EvalkitError

CUDA_ENV = "CUDA_VISIBLE_DEVICES"
THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_GPU_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/kfd")  # NVIDIA, ROCm


@dataclass(frozen=True)
class Placement:
    where: str  # for people: "GPU 3", "1 CPU thread"
    threads: int
    env: dict[str, str] = field(default_factory=dict)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """The parent's visible CUDA devices as CUDA_VISIBLE_DEVICES entries (indices, UUIDs or MIG ids).

    CUDA_VISIBLE_DEVICES, when set, is the truth (CUDA itself stops at the first invalid entry such as
    -1); otherwise torch counts the devices (without creating a CUDA context).
    """
    listed = os.environ.get(CUDA_ENV)
    if listed is not None:
        gpus = []
        for entry in (part.strip() for part in listed.split(",")):
            if not entry or entry.startswith("-"):
                break
            gpus.append(entry)
        return gpus
    if not any(Path(p).exists() for p in _GPU_DRIVER_PATHS):
        return []  # no GPU driver: no need to import torch (seconds) to hear that
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def thread_share(count: int) -> int:
    """CPU threads per worker: an explicit OMP_NUM_THREADS (the user's per-process choice), else the
    usable cores split evenly, at least one."""
    explicit = os.environ.get("OMP_NUM_THREADS", "")
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    return max(1, usable_cores() // count)


def placements(count: int, device: str, uses_device: bool) -> list[Placement]:
    """One Placement per worker. `uses_device`: the backend puts a model on a device (sambay, hf, vllm);
    other backends (a remote server) only get their thread share."""
    threads = thread_share(count)
    thread_env = {name: str(threads) for name in THREAD_ENVS}
    cpu = [Placement(f"{threads} CPU thread{'s' if threads > 1 else ''}", threads, thread_env)] * count
    if not uses_device or device == "cpu":
        return cpu
    if device.startswith("cuda:"):
        raise EvalkitError(
            f"--device {device} names one GPU, but --data-parallel gives each worker its own; "
            "pass --device cuda (or auto) and choose the GPUs with CUDA_VISIBLE_DEVICES"
        )
    gpus = visible_gpus()
    if not gpus:
        return cpu  # auto on a machine without GPUs (--device cuda fails in the backend, with its reason)
    if count > len(gpus):
        raise EvalkitError(
            f"--data-parallel {count} needs {count} GPUs (one per worker) but {len(gpus)} "
            f"{'is' if len(gpus) == 1 else 'are'} visible ({CUDA_ENV}={','.join(gpus)}); "
            f"use --data-parallel {len(gpus)} or fewer, or --device cpu"
        )
    return [Placement(f"GPU {gpu}", threads, {**thread_env, CUDA_ENV: gpu}) for gpu in gpus[:count]]
