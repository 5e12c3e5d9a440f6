"""Differential attention (sambay.md 4.3-4.6) in its three roles, each with its own prefill and decode:

- SlidingWindowAttention (self-decoder): its own ring of the last `window` K/V;
- FullAttention (layer L/2+1): K/V for every position, which it hands to the cross layers (YOCO);
  in prefill, once its K/V are stored, only the last token goes on (sambay.md 5.2);
- CrossAttention (cross-decoder): Q only, over the full-attention layer's K/V.

No positional encoding of any kind (sambay.md 4.9). The lambdas and subln live in `inner_cross_attn`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..ops import diff_attention as attention_ops
from ..ops.dispatch import AUTO, Ops
from .config import SambaYConfig, lambda_init
from .context import DecodeContext, PrefillContext
from .state import KVCache


class SubLayerNorm(nn.Module):
    """Holds the subln weight [2 * head_dim]; the HF RMSNorm math is in ops/diff_attention.py."""

    def __init__(self, width: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps


class DiffLambda(nn.Module):
    """`inner_cross_attn` in the checkpoint: the lambda vectors (fp32) and the subln of one layer."""

    def __init__(self, config: SambaYConfig, layer_idx: int):
        super().__init__()
        D = config.head_dim
        for name in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"):
            setattr(self, name, nn.Parameter(torch.zeros(D, dtype=torch.float32)))
        self.subln = SubLayerNorm(2 * D, config.layer_norm_eps)
        self.lambda_init = lambda_init(layer_idx)

    def lam(self) -> torch.Tensor:
        """Scalar per layer: exp(q1.k1) - exp(q2.k2) + lambda_init, dot products in fp32."""
        lam1 = torch.exp(torch.dot(self.lambda_q1.float(), self.lambda_k1.float()))
        lam2 = torch.exp(torch.dot(self.lambda_q2.float(), self.lambda_k2.float()))
        return lam1 - lam2 + self.lambda_init


class DiffAttention(nn.Module):
    """The projections and the two attention calls shared by the three roles. Self layers project
    Q|K|V; cross layers project Q only."""

    is_cross = False

    def __init__(self, config: SambaYConfig, layer_idx: int):
        super().__init__()
        self.num_heads, self.num_kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = config.head_dim
        q_width = self.num_heads * self.head_dim
        kv_width = self.num_kv_heads * self.head_dim
        self.Wqkv = nn.Linear(config.hidden_size, q_width if self.is_cross else q_width + 2 * kv_width)
        self.out_proj = nn.Linear(q_width, config.hidden_size)
        self.inner_cross_attn = DiffLambda(config, layer_idx)

    def project(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """u [..., H] -> q [..., Hq, D], k/v [..., Hkv, D] (None for cross layers)."""
        qkv = self.Wqkv(u)
        lead = qkv.shape[:-1]
        if self.is_cross:
            return qkv.view(*lead, self.num_heads, self.head_dim), None, None
        kv_width = self.num_kv_heads * self.head_dim
        q, k, v = qkv.split([self.num_heads * self.head_dim, kv_width, kv_width], dim=-1)
        shape = (*lead, self.num_kv_heads, self.head_dim)
        return q.reshape(*lead, self.num_heads, self.head_dim), k.reshape(shape), v.reshape(shape)

    def _core_args(self) -> tuple:
        core = self.inner_cross_attn
        return core.lam(), core.lambda_init, core.subln.weight, core.subln.eps

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None, ops: Ops = AUTO
    ) -> torch.Tensor:
        """q [B, Tq, Hq, D] over k/v [B, Tk, Hkv, D] (causal, bottom-right) -> [B, Tq, H]."""
        return self.out_proj(attention_ops.diff_attention(q, k, v, *self._core_args(), window, ops=ops))

    def attend_cached(
        self,
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        slots: torch.Tensor,
        cache_lens: torch.Tensor,
        ops: Ops = AUTO,
    ) -> torch.Tensor:
        """q [B, Hq, D] over cache rows `slots` -> [B, H]."""
        out = attention_ops.diff_attention_decode(
            q, k_cache, v_cache, slots, cache_lens, *self._core_args(), ops=ops
        )
        return self.out_proj(out)


class SlidingWindowAttention(DiffAttention):
    def __init__(self, config: SambaYConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.window = config.sliding_window  # keys seen, including the current token

    def prefill(self, u: torch.Tensor, state: KVCache | None, ctx: PrefillContext) -> torch.Tensor:
        q, k, v = self.project(u)
        mixed = self.attend(q, k, v, self.window, ctx.ops)
        if state is not None:
            state.write_prompt(ctx.slot, k[0], v[0])
        return mixed

    def decode(self, u: torch.Tensor, state: KVCache, ctx: DecodeContext) -> torch.Tensor:
        q, k, v = self.project(u)
        state.write_token(ctx.slots, ctx.ring_rows, k, v)
        return self.attend_cached(q, state.k, state.v, ctx.slots, ctx.lens, ctx.ops)


class FullAttention(DiffAttention):
    def prefill(self, u: torch.Tensor, state: KVCache | None, ctx: PrefillContext) -> torch.Tensor:
        """With a state, returns the last token only: the cross-decoder's earlier positions feed nothing
        but their own logits, and prefill wants the last one's (the caller's residual follows)."""
        q, ctx.shared_k, ctx.shared_v = self.project(u)
        if state is not None:
            state.write_prompt(ctx.slot, ctx.shared_k[0], ctx.shared_v[0])
            q, ctx.memory = q[:, -1:], ctx.memory[:, -1:]
        return self.attend(q, ctx.shared_k, ctx.shared_v, None, ctx.ops)

    def decode(self, u: torch.Tensor, state: KVCache, ctx: DecodeContext) -> torch.Tensor:
        q, k, v = self.project(u)
        state.write_token(ctx.slots, ctx.positions, k, v)
        return self.attend_cached(q, state.k, state.v, ctx.slots, ctx.lens, ctx.ops)


class CrossAttention(DiffAttention):
    """Reads the full-attention layer's K/V: in prefill as it handed them on, in decode from its cache
    (just extended by this token)."""

    is_cross = True

    def prefill(self, u: torch.Tensor, state: KVCache | None, ctx: PrefillContext) -> torch.Tensor:
        q, _, _ = self.project(u)
        return self.attend(q, ctx.shared_k, ctx.shared_v, None, ctx.ops)

    def decode(self, u: torch.Tensor, state: KVCache, ctx: DecodeContext) -> torch.Tensor:
        q, _, _ = self.project(u)
        return self.attend_cached(q, state.k, state.v, ctx.slots, ctx.lens, ctx.ops)
