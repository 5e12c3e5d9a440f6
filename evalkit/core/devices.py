"""`--device` / `--dtype` -> what torch runs on, for every backend that loads weights itself (sambay, hf).

torch is imported when the function is called, never at import, so the CLI starts fast.
"""

from __future__ import annotations

import re
from typing import Any

from evalkit.core.errors import BackendError

DTYPES = ("bfloat16", "float16", "float32")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_dtype(device: str, dtype: str) -> None:
    """The spelling of --device and --dtype (no torch needed): a BackendError naming the valid ones."""
    if not _DEVICE.fullmatch(device):
        raise BackendError(f"unknown --device {device!r}; choose auto, cpu, cuda or cuda:N (N = GPU index)")
    if dtype != "auto" and dtype not in DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}; choose auto, {', '.join(DTYPES[:-1])} or {DTYPES[-1]}")


def resolve_device_dtype(device: str, dtype: str) -> tuple[str, Any]:
    """(device, torch dtype): "auto" device = cuda when torch sees a GPU, else cpu; "auto" dtype =
    bfloat16 on CUDA, float32 on CPU. An unknown device or dtype, a CUDA device without a GPU, or a GPU
    index past the last one is a BackendError."""
    check_device_dtype(device, dtype)
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"--device {device} asked for, but torch sees no CUDA GPU; use --device cpu")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise BackendError(f"--device {device}: torch sees {count} GPU(s), cuda:0 to cuda:{count - 1}")
    if dtype == "auto":
        return device, torch.bfloat16 if device.startswith("cuda") else torch.float32
    return device, getattr(torch, dtype)
