"""The engine's bookkeeping: one Sequence per sample, one Group per problem (its prompt and its parent state).

A Group is prefilled once into a parent slot; its samples start by forking that slot's state. Tokens
live on the host as Python lists: the engine learns them once per step (its single host sync).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

import torch

from model_backends.sambay.engine.request import SamplingParams


class Status(enum.Enum):
    WAITING = "waiting"  # not started: needs its group's parent state and a free slot
    RUNNING = "running"  # owns a slot; its last generated token is not yet in the slot's state
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    """One sample of one request."""

    request_id: str
    sample_index: int
    seed: int
    prompt_ids: list[int]
    sampling: SamplingParams
    generated: list[int] = field(default_factory=list)
    status: Status = Status.WAITING
    slot: int | None = None
    finish_reason: str | None = None  # "stop" | "length" once finished ("abort": dropped, never returned)
    stop_string: str | None = None  # the sampling.stop string that ended it, if any
    arrival: float = field(default_factory=time.perf_counter)
    finished_at: float | None = None

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    @property
    def num_generated_tokens(self) -> int:
        return len(self.generated)

    @property
    def seconds(self) -> float:
        end = self.finished_at if self.finished_at is not None else time.perf_counter()
        return end - self.arrival


@dataclass(eq=False)
class Group:
    """The samples of one request sharing one prompt; `parent_slot` holds the prefilled prompt state.

    `first_logits` are the prefill's last-token logits: every sample draws its first token from them with
    its own seed, including samples that start after the parent has been waiting for a free slot.
    """

    request_id: str
    prompt_ids: list[int]
    waiting: list[Sequence]  # samples not started yet, in sample order
    parent_slot: int | None = None
    first_logits: torch.Tensor | None = None  # [V], on the model's device

    @property
    def max_new_tokens(self) -> int:
        return max(seq.sampling.max_new_tokens for seq in self.waiting)

    @property
    def needs_prefill(self) -> bool:
        return self.parent_slot is None and bool(self.waiting)
