"""Pieces of benchmarks/engine.py: roofline bytes, the transformer baseline, workloads and their
schedules, engine measurements, the report."""

from __future__ import annotations

import torch


def sync(device: str | torch.device) -> None:
    """Wait for the device's queued work, so a wall-clock timer measures it (a no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
