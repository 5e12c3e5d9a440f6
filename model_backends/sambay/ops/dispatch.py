"""Which implementation an op runs: its Triton kernel for CUDA tensors when Triton imports, else its
pure-PyTorch reference. The choice is logged once per (op, path) so a run says which code it used.

`EVALKIT_SAMBAY_OPS=reference` in the environment (or `with reference_ops():`) forces the reference
ops on every device: to compare against the kernels, or to rule them out when debugging a GPU run.
`EVALKIT_SAMBAY_OPS=triton` (or `with triton_ops():`) forces the kernels on every device; on CPU
tensors that only works under the Triton interpreter (TRITON_INTERPRET=1), which is what the
whole-model interpreter test uses."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from model_backends.sambay.errors import ConfigError

logger = logging.getLogger(__name__)
_logged: set[tuple[str, str]] = set()
_MODES = ("auto", "reference", "triton")  # auto: Triton for CUDA tensors, the reference elsewhere


def parse_mode(value: str | None) -> str:
    """The EVALKIT_SAMBAY_OPS value as a mode; a misspelt one is refused, never read as another mode."""
    mode = (value or "").strip().lower() or "auto"
    if mode not in _MODES:
        raise ConfigError(f"EVALKIT_SAMBAY_OPS={value!r} is not a mode; set it to auto, reference or triton")
    return mode


_mode = parse_mode(os.environ.get("EVALKIT_SAMBAY_OPS"))


@functools.cache
def _triton_imports() -> bool:
    """Whether triton really imports (as every op module tries), not merely whether it is installed."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def use_triton(op: str, x: torch.Tensor, triton_available: bool) -> bool:
    """True when `op` should run its Triton kernel on `x`'s device."""
    wanted = _mode == "triton" or (_mode == "auto" and x.is_cuda)
    path = "triton" if (wanted and triton_available) else "reference"
    if (op, path) not in _logged:
        _logged.add((op, path))
        logger.info("%s: using the %s path (device %s)", op, path, x.device)
    return path == "triton"


def triton_active() -> bool:
    """True when CUDA tensors get the Triton kernels: triton imports and the reference is not forced."""
    return _mode != "reference" and _triton_imports()


@contextmanager
def ops_mode(mode: str) -> Iterator[None]:
    """Inside the block, ops dispatch as `mode` says ("auto", "reference" or "triton")."""
    global _mode
    before, _mode = _mode, parse_mode(mode)
    try:
        yield
    finally:
        _mode = before


def reference_ops():
    """Run the reference ops on every device inside the block."""
    return ops_mode("reference")


def triton_ops():
    """Run the Triton kernels on every device inside the block (CPU: under TRITON_INTERPRET=1 only)."""
    return ops_mode("triton")


def describe_path(device: torch.device | str) -> str:
    """One line for users: which ops a model on `device` runs, and why."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"reference PyTorch ops (device {device}; the Triton kernels need CUDA)"
    if _mode == "reference":
        return "reference PyTorch ops (forced by EVALKIT_SAMBAY_OPS=reference)"
    if not _triton_imports():
        return "reference PyTorch ops (triton does not import: pip install 'evalkit[gpu]')"
    return "Triton kernels"
