"""On-device sampling: temperature, tie-inclusive top-p, and per-sample seeds without a Generator per sample.

A sample's random draw at generation step `t` is a pure function of (seed, t): a splitmix64 hash
computed with int64 tensor ops, turned into a float64 uniform u in [0, 1). The token is then a function
of (logits row, temperature, top_p, u) only (ops/top_p.py), so a sample's tokens do not depend on which
other samples share the batch or which slot it uses. Every row is processed independently and nothing
syncs the host.

Top-p (ops/top_p.py states it exactly): probs = softmax(logits / temperature) in fp32; token i is kept
iff the mass of the tokens strictly more probable than i is < top_p (ties are kept or dropped together,
the most probable token(s) always kept, top_p >= 1 keeps all); the draw is the inverse CDF of the kept
mass in vocabulary order: the first id whose running kept mass exceeds u * kept_mass. temperature == 0
means greedy argmax (lowest id on ties). On CUDA a Triton kernel does this without sorting the
vocabulary; elsewhere the PyTorch reference does.
"""

from __future__ import annotations

import torch

from model_backends.sambay.ops import top_p as top_p_ops
from model_backends.sambay.ops.dispatch import AUTO, Ops

_MASK64 = (1 << 64) - 1


def as_int64(value: int) -> int:
    """A uint64 constant as the int64 with the same bits (torch has no uint64 arithmetic everywhere)."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = as_int64(0x9E3779B97F4A7C15)
_MIX1 = as_int64(0xBF58476D1CE4E5B9)
_MIX2 = as_int64(0x94D049BB133111EB)


def _shr(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's >> is arithmetic: it copies the sign bit)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def uniform(seeds: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """splitmix64(seed + (step + 1) * golden) -> float64 uniform in [0, 1); int64 multiply wraps mod 2^64.

    seeds, steps: int64 [B] (same device). Returns float64 [B].
    """
    z = seeds + (steps + 1) * _GOLDEN
    z = (z ^ _shr(z, 30)) * _MIX1
    z = (z ^ _shr(z, 27)) * _MIX2
    z = z ^ _shr(z, 31)
    return _shr(z, 11).to(torch.float64) * (1.0 / (1 << 53))


def sample(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    top_p: torch.Tensor,
    seeds: torch.Tensor,
    steps: torch.Tensor,
    *,
    ops: Ops = AUTO,
) -> torch.Tensor:
    """One token per row.

    logits: [B, V] any float dtype; temperature, top_p: float [B]; seeds, steps: int64 [B].
    Returns int64 [B]. Rows with temperature 0 take the argmax (ties: the lowest token id).
    """
    return top_p_ops.top_p_sample(logits, temperature, top_p, uniform(seeds, steps), ops=ops)
