"""The contracts between the parts of evalkit (see ARCHITECTURE.md).

tasks -> runner:   Problem, SampleView
runner -> backend: GenerationRequest (with SamplingParams)
backend -> runner: Completion
backend protocol:  Backend

These types are plain frozen dataclasses with `to_dict` / `from_dict` so they can be written to JSONL
unchanged. Nothing here imports torch or any backend.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

AnswerType = Literal["integer", "math", "choice"]
FinishReason = Literal["stop", "length", "error"]
Message = dict[str, str]  # {"role": "user" | "system" | "assistant", "content": str}


@dataclass(frozen=True)
class Problem:
    """One benchmark item.

    `messages` is the chat prompt for sample 0's view of the problem. For tasks whose prompt depends on
    the sample (GPQA's option order), ask the task for `sample_view(problem, sample_index, seed)`;
    `gold` is then the gold of the *unpermuted* problem (GPQA: the correct option's text).
    """

    id: str
    messages: tuple[Message, ...]
    gold: str
    answer_type: AnswerType
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleView:
    """What one sample of a problem sees: its prompt, its gold, and (GPQA) its option permutation.

    `permutation[i]` is the index in the original option list (0 = correct answer, 1..3 = incorrect
    answers 1..3) of the option shown at letter i. None for tasks that don't permute.
    """

    messages: tuple[Message, ...]
    gold: str
    permutation: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 32768
    stop: tuple[str, ...] = ()  # extra stop strings; backends always stop on the model's own stop tokens

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass(frozen=True)
class GenerationRequest:
    """Generate one completion for each sample index, all from the same prompt.

    `seeds[i]` is the seed of sample `sample_indices[i]`; a backend that honours seeds must make sample
    i's tokens depend only on (model, prompt, seeds[i], sampling), never on batch composition.
    A resumed run sends only the sample indices still missing.
    """

    request_id: str  # the problem id (runner convention); unique within one generate() call
    messages: tuple[Message, ...]
    sample_indices: tuple[int, ...]
    seeds: tuple[int, ...]
    sampling: SamplingParams
    prompt_text: str | None = None  # pre-rendered prompt; when set, backends use it instead of messages

    def __post_init__(self) -> None:
        if len(self.sample_indices) != len(self.seeds):
            raise ValueError("sample_indices and seeds must have the same length")
        if not self.sample_indices:
            raise ValueError("a GenerationRequest needs at least one sample index")

    @property
    def n(self) -> int:
        return len(self.sample_indices)


@dataclass(frozen=True)
class Completion:
    request_id: str
    sample_index: int
    text: str
    num_prompt_tokens: int
    num_generated_tokens: int
    finish_reason: FinishReason
    seconds: float = 0.0  # wall time from request start to this sample's end
    extra: dict[str, Any] = field(default_factory=dict)  # backend-specific: usage, raw response, error

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Completion:
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in d.items() if k in names})


@runtime_checkable
class Backend(Protocol):
    """A generator of completions. Construction fails with a one-line BackendError when it cannot start."""

    name: str

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        """Yield one Completion per (request, sample index) as each finishes, in any order."""
        ...

    def model_info(self) -> dict[str, Any]:
        """Provenance: model id / path, revision or content hash, dtype, device, library versions."""
        ...


def stable_hash(obj: Any, length: int = 16) -> str:
    """sha256 of the canonical JSON of `obj` (sorted keys, no whitespace), hex, truncated."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def derive_seed(run_seed: int, task: str, problem_id: str, sample_index: int) -> int:
    """The seed of one sample: a 63-bit integer from (run seed, task, problem id, sample index)."""
    digest = hashlib.sha256(f"{run_seed}\x1f{task}\x1f{problem_id}\x1f{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
