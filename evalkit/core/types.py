"""The contracts between the parts of evalkit (see ARCHITECTURE.md).

tasks -> harness:    Problem, SampleView (the Task protocol says what the harness asks of a task)
harness -> backend:  GenerationRequest (with SamplingParams: the protocol's defaults and their validation)
backend -> harness:  Completion
backend protocol:    Backend

Plain frozen dataclasses; nothing here imports torch or any backend. What a run folder stores is in
evalkit.core.records (the completion record adds the problem id, seed, gold and permutation).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from evalkit.core.errors import EvalkitError

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


class SamplingError(EvalkitError, ValueError):
    """Sampling parameters out of range (a user error; also a ValueError for library callers)."""


def sampling_problem(
    temperature: float, top_p: float, max_new_tokens: int, names: Mapping[str, str] | None = None
) -> str | None:
    """The first thing wrong with these sampling values, as one line, or None when they are valid.

    `names` renames the fields in the message (the CLI says `--top-p`, the HTTP API `max_tokens`).
    NaN and infinity are refused: NaN compares False with everything, so a plain range check lets it in.
    """
    name = {
        "temperature": "temperature",
        "top_p": "top_p",
        "max_new_tokens": "max_new_tokens",
        **(names or {}),
    }
    if not _is_number(temperature) or not math.isfinite(temperature) or temperature < 0:
        return f"{name['temperature']} must be a finite number >= 0, got {temperature}"
    if not _is_number(top_p) or not 0 < top_p <= 1:  # also refuses NaN and inf
        return f"{name['top_p']} must be in (0, 1], got {top_p}"
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, Integral) or max_new_tokens < 1:
        return f"{name['max_new_tokens']} must be an integer >= 1, got {max_new_tokens}"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)  # numpy scalars are Real too


@dataclass(frozen=True)
class SamplingParams:
    """How the samples of a request are drawn. The defaults are the published protocol's
    (EVAL_PROTOCOL.md); the CLI, serve and the backends take theirs from here (`SamplingParams()`)."""

    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 32768
    stop: tuple[str, ...] = ()  # extra stop strings; backends always stop on the model's own stop tokens

    def __post_init__(self) -> None:
        problem = sampling_problem(self.temperature, self.top_p, self.max_new_tokens)
        if problem is not None:
            raise SamplingError(problem)


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


class Task(Protocol):
    """What the harness asks of a benchmark, and nothing more (`tasks.Task` implements it)."""

    @property
    def name(self) -> str: ...

    @property
    def default_n(self) -> int:
        """Samples per problem in the published protocol."""
        ...

    @property
    def answer_type(self) -> AnswerType: ...

    @property
    def default_prompt(self) -> str: ...

    @property
    def metadata_fields(self) -> tuple[str, ...]:
        """Problem.metadata keys worth a per-group breakdown (they go into config.json)."""
        ...

    @property
    def per_sample_prompts(self) -> bool:
        """True when samples of one problem see different prompts (GPQA's option order)."""
        ...

    @property
    def private(self) -> bool:
        """True when the task's text must never reach the disk (GPQA: its authors ask that examples not
        appear in plain text). Runs then store only hashes of prompts (the record's prompt_hash, a
        backend's prompt_sha256); the runner removes any prompt text a backend put into
        Completion.extra (evalkit.core.privacy)."""
        ...

    @property
    def definition(self) -> str | None:
        """A hash of what defines the task beyond its problems and prompt (a task file's TOML and its data
        file), which enters the run's identity; None for the built-in tasks."""
        ...

    def prompt_hash(self, prompt: str | None = None) -> str:
        """Hash of the named prompt template; an unknown name is an EvalkitError listing the valid ones."""
        ...

    def load(self, data_dir: str | Path | None = None, prompt: str | None = None) -> list[Problem]:
        """Every problem, validated, rendered with the named prompt; bad data is a DataError."""
        ...

    def sample_view(self, problem: Problem, sample_index: int, seed: int) -> SampleView:
        """What sample `sample_index` of a run with `seed` is shown, and its gold."""
        ...


def stable_hash(obj: Any, length: int = 16) -> str:
    """sha256 of the canonical JSON of `obj` (sorted keys, no whitespace), hex, truncated."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def derive_seed(run_seed: int, task: str, problem_id: str, sample_index: int) -> int:
    """The seed of one sample: a 63-bit integer from (run seed, task, problem id, sample index)."""
    digest = hashlib.sha256(f"{run_seed}\x1f{task}\x1f{problem_id}\x1f{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
