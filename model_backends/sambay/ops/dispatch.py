"""Which implementation an op runs: its Triton kernel for CUDA tensors when Triton imports, else its
pure-PyTorch reference. The choice is logged once per (op, path) so a run says which code it used.

`EVALKIT_SAMBAY_OPS=reference` in the environment (or `with reference_ops():`) forces the reference
ops on every device: to compare against the kernels, or to rule them out when debugging a GPU run.
`EVALKIT_SAMBAY_OPS=triton` (or `with triton_ops():`) forces the kernels on every device; on CPU
tensors that only works under the Triton interpreter (TRITON_INTERPRET=1), which is what the
whole-model interpreter test uses."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

logger = logging.getLogger(__name__)
_logged: set[tuple[str, str]] = set()
_mode = os.environ.get("EVALKIT_SAMBAY_OPS", "").strip().lower()
_force_reference = _mode == "reference"
_force_triton = _mode == "triton"


def use_triton(op: str, x: torch.Tensor, triton_available: bool) -> bool:
    """True when `op` should run its Triton kernel on `x`'s device."""
    wanted = (x.is_cuda or _force_triton) and not _force_reference
    path = "triton" if (wanted and triton_available) else "reference"
    if (op, path) not in _logged:
        _logged.add((op, path))
        logger.info("%s: using the %s path (device %s)", op, path, x.device)
    return path == "triton"


def triton_active() -> bool:
    """True when CUDA tensors get the Triton kernels: triton imports (every op module imports it the
    same way) and the reference ops are not forced."""
    return not _force_reference and importlib.util.find_spec("triton") is not None


@contextmanager
def triton_ops() -> Iterator[None]:
    """Run the Triton kernels on every device inside the block (CPU: under TRITON_INTERPRET=1 only)."""
    global _force_triton
    before, _force_triton = _force_triton, True
    try:
        yield
    finally:
        _force_triton = before


@contextmanager
def reference_ops() -> Iterator[None]:
    """Run the reference ops on every device inside the block."""
    global _force_reference
    before, _force_reference = _force_reference, True
    try:
        yield
    finally:
        _force_reference = before


def describe_path(device: torch.device | str) -> str:
    """One line for users: which ops a model on `device` runs, and why."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"reference PyTorch ops (device {device}; the Triton kernels need CUDA)"
    if _force_reference:
        return "reference PyTorch ops (forced by EVALKIT_SAMBAY_OPS=reference)"
    if importlib.util.find_spec("triton") is None:
        return "reference PyTorch ops (triton is not installed: pip install 'evalkit[gpu]')"
    return "Triton kernels"
