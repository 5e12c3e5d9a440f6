"""A tiny stand-in with the SambaY prefill/decode/state-pool interface, for fast exact scheduler tests.

Its per-slot state is a rolling hash of every token seen, so any mix-up of slots, a missed fork or a
stale parent changes the next logits; `forward` recomputes everything from the tokens (the oracle).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import torch

from model_backends.sambay.ops.dispatch import Ops

NUM_STATES = 997


def _mix(state: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    return (state * 31 + token + 1) % NUM_STATES


class FakePool:
    def __init__(self, num_slots: int, max_seq_len: int) -> None:
        self.num_slots, self.max_seq_len = num_slots, max_seq_len
        self.hash = torch.zeros(num_slots, dtype=torch.long)
        self.seq_lens = torch.zeros(num_slots, dtype=torch.long)

    def copy_(self, src: int, dst: Sequence[int], length: int | None = None) -> None:
        assert length is None or length == int(self.seq_lens[src]), "fork length != the parent's"
        self.hash[list(dst)] = self.hash[src].clone()
        self.seq_lens[list(dst)] = self.seq_lens[src].clone()

    def reset_(self, slots: Sequence[int]) -> None:
        self.hash[list(slots)] = 0
        self.seq_lens[list(slots)] = 0

    def nbytes(self) -> int:
        return self.hash.numel() * 16


class FakeModel(torch.nn.Module):
    def __init__(self, vocab_size: int = 32, seed: int = 0, max_position_embeddings: int = 4096) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.table = torch.nn.Parameter(3 * torch.randn(NUM_STATES, vocab_size, generator=gen))
        self.config = SimpleNamespace(vocab_size=vocab_size, max_position_embeddings=max_position_embeddings)
        self.ops = Ops()  # what the runner asks (graphs, sampler); the fake itself calls no op
        self.prefilled_prompts = 0
        self.pools: list[FakePool] = []

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        state = torch.zeros(input_ids.shape[0], dtype=torch.long)
        rows = []
        for t in range(input_ids.shape[1]):
            state = _mix(state, input_ids[:, t])
            rows.append(self.table[state])
        return torch.stack(rows, dim=1)

    def new_state_pool(
        self, num_slots: int, max_seq_len: int, dtype=None, device=None, scratch_slot=False
    ) -> FakePool:
        assert not scratch_slot, "the fake pool has no scratch slot (padded decode runs on the real model)"
        self.pools.append(FakePool(num_slots, max_seq_len))
        return self.pools[-1]

    def prefill(self, prompts: list[torch.Tensor], slots: torch.Tensor, pool: FakePool) -> torch.Tensor:
        out = []
        for prompt, slot in zip(prompts, slots.tolist(), strict=True):
            assert 0 < len(prompt) <= pool.max_seq_len
            pool.hash[slot] = 0
            for token in prompt:
                pool.hash[slot] = _mix(pool.hash[slot], token)
            pool.seq_lens[slot] = len(prompt)
            out.append(self.table[pool.hash[slot]])
        self.prefilled_prompts += len(prompts)
        return torch.stack(out)

    def decode(
        self, token_ids: torch.Tensor, slots: torch.Tensor, pool: FakePool, check_bounds: bool = True
    ) -> torch.Tensor:
        assert len(set(slots.tolist())) == len(slots), "two sequences share a slot"
        assert bool((pool.seq_lens[slots] < pool.max_seq_len).all()), "slot overflow"
        pool.hash[slots] = _mix(pool.hash[slots], token_ids)
        pool.seq_lens[slots] += 1
        return self.table[pool.hash[slots]]


def naive_generate(
    model: torch.nn.Module, prompt: list[int], seed: int, sampling, stop_ids=()
) -> tuple[list[int], str]:
    """The oracle: a full forward over all tokens for every new token, the same seeded sampler."""
    from model_backends.sambay.engine.sampler import sample

    ids, out = list(prompt), []
    for step in range(sampling.max_new_tokens):
        with torch.inference_mode():
            logits = model(torch.tensor([ids]))[:, -1]
        token = sample(
            logits,
            torch.tensor([sampling.temperature]),
            torch.tensor([sampling.top_p]),
            torch.tensor([seed]),
            torch.tensor([step]),
        ).item()
        out.append(token)
        ids.append(token)
        if token in stop_ids:
            return out, "stop"
    return out, "length"
