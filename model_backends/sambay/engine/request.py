"""What a caller hands the engine: one Request per prompt (its samples' indices and seeds) and its
SamplingParams. The engine validates them itself; callers (backend.py) translate their own types."""

from __future__ import annotations

import math
from dataclasses import dataclass

from model_backends.sambay.errors import RequestError


@dataclass(frozen=True, kw_only=True)
class SamplingParams:
    """Per-sample sampling. No defaults for the numbers: the caller states them (the harness owns its
    defaults). temperature 0 is greedy; top_p >= 1 keeps the whole vocabulary; `stop` strings end a
    sample when its decoded text contains one (the engine needs a detokenizer for them)."""

    temperature: float
    top_p: float
    max_new_tokens: int
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise RequestError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:  # NaN fails both comparisons
            raise RequestError(f"top_p must be in (0, 1], got {self.top_p}")
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            raise RequestError(f"max_new_tokens must be an integer, got {self.max_new_tokens!r}")
        if self.max_new_tokens < 1:
            raise RequestError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not isinstance(self.stop, tuple) or not all(isinstance(s, str) for s in self.stop):
            raise RequestError(f"stop must be a tuple of strings, got {self.stop!r}")


@dataclass(frozen=True)
class Request:
    """All samples of one prompt: sample `sample_indices[i]` draws with seed `seeds[i]`, so its tokens
    depend only on (model, prompt, seed, sampling), never on what else shares the batch."""

    request_id: str
    sample_indices: tuple[int, ...]
    seeds: tuple[int, ...]
    sampling: SamplingParams

    def __post_init__(self) -> None:
        if len(self.sample_indices) != len(self.seeds):
            raise RequestError(
                f"request {self.request_id!r}: {len(self.sample_indices)} sample indices but "
                f"{len(self.seeds)} seeds"
            )
        if not self.sample_indices:
            raise RequestError(f"request {self.request_id!r} has no sample index")

    @property
    def n(self) -> int:
        return len(self.sample_indices)
