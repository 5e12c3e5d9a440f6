"""`--device` / `--dtype` -> what torch runs on, for every backend that loads weights itself (sambay, hf).

torch is imported when the function is called, never at import, so the CLI starts fast.
"""

from __future__ import annotations

from typing import Any

from evalkit.core.errors import BackendError

DTYPES = ("bfloat16", "float16", "float32")


def resolve_device_dtype(device: str, dtype: str) -> tuple[str, Any]:
    """(device, torch dtype): "auto" device = cuda when torch sees a GPU, else cpu; "auto" dtype =
    bfloat16 on CUDA, float32 on CPU. A CUDA device without a GPU, or an unknown dtype, is a BackendError."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"--device {device} asked for, but torch sees no CUDA GPU; use --device cpu")
    if dtype == "auto":
        return device, torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}; choose auto, {', '.join(DTYPES[:-1])} or {DTYPES[-1]}")
    return device, getattr(torch, dtype)
