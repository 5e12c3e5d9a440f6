"""EngineConfig: how the engine sizes its pool and batches, and the context limit it enforces."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from numbers import Integral, Real

from model_backends.sambay.errors import ConfigError

# Only for a checkpoint whose config.json declares no context (max_position_embeddings): the model
# card's 64K, which is also what the authors serve with (--max-model-len 65536, sambay.md 1.3).
UNDECLARED_CONTEXT_LIMIT = 65536


@dataclass(frozen=True)
class EngineConfig:
    max_slots: int | None = None  # None: from the memory budget (CUDA) or `cpu_slots` (CPU)
    max_seq_len: int | None = None  # None: longest queued prompt + max_new_tokens, rounded up
    context_limit: int | None = None  # None: the checkpoint's own (max_position_embeddings); lower only
    max_prefill_tokens: int = 8192  # prompt tokens per prefill call (the first prompt always fits)
    seq_len_multiple: int = 1024
    cpu_slots: int = 16
    max_memory_slots: int = 1024
    gpu_memory_fraction: float = 0.9
    ignore_stop_tokens: bool = False  # benchmarks: force every sample to max_new_tokens
    cuda_graphs: bool = True  # replay decode steps from CUDA graphs (CUDA + Triton only)

    def __post_init__(self) -> None:
        """Every value checked when the config is made (before any model loads): counts are integers
        >= 1 (the optional ones may be None), the memory fraction a finite number in (0, 1], the
        switches booleans."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SWITCHES:
                ok, need = isinstance(value, bool), "true or false"
            elif f.name == "gpu_memory_fraction":
                ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
                ok, need = ok and 0 < value <= 1, "a number in (0, 1]"
            elif value is None and f.name in _OPTIONAL:
                continue
            else:
                ok = isinstance(value, Integral) and not isinstance(value, bool) and value >= 1
                need = "an integer >= 1" + (" (or unset)" if f.name in _OPTIONAL else "")
            if not ok:
                flag = " (--max-slots)" if f.name == "max_slots" else ""
                raise ConfigError(f"{f.name}{flag} must be {need}, got {value!r}")


_SWITCHES = ("ignore_stop_tokens", "cuda_graphs")
_OPTIONAL = ("max_slots", "max_seq_len", "context_limit")


def context_limit(configured: int | None, declared: int | None) -> int:
    """The limit on prompt + max_new_tokens: the checkpoint's declared context, lowered (never raised)
    by `EngineConfig.context_limit`."""
    if configured is not None and configured < 1:
        raise ConfigError(f"context_limit must be >= 1, got {configured}")
    limits = [limit for limit in (configured, declared) if limit is not None]
    return min(limits) if limits else UNDECLARED_CONTEXT_LIMIT
