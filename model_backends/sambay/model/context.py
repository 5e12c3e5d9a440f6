"""What one pass through the layers tells each of them, besides its own state.

A layer's prefill / decode gets three things: its input, the view of its own state that the StatePool
hands it (state.py), and this context: the ops to run, where the pass writes (slot, or slots and
positions), and the two values layers hand on to later layers (sambay.md 2): the memory Mamba's
output (read by the GMUs) and, in prefill, the full-attention layer's K/V (read by the cross layers).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from model_backends.sambay.ops.dispatch import Ops


@dataclass
class PrefillContext:
    """One prompt [1, T] into `slot`, or the stateless full forward over [B, T] (slot None)."""

    ops: Ops
    slot: int | None = None
    memory: torch.Tensor | None = None  # [B, T or 1, d_inner], set by the memory Mamba
    shared_k: torch.Tensor | None = None  # [B, T, Hkv, D], set by the full attention
    shared_v: torch.Tensor | None = None


@dataclass
class DecodeContext:
    """One token per sequence: sequence b writes position `positions[b]` of slot `slots[b]`."""

    ops: Ops
    slots: torch.Tensor  # [B] int64
    positions: torch.Tensor  # [B] position of the new token
    lens: torch.Tensor  # [B] keys visible including the new token (positions + 1)
    ring_rows: torch.Tensor  # [B] positions % window: the new token's row in a sliding-window ring
    memory: torch.Tensor | None = None  # [B, d_inner], set by the memory Mamba
