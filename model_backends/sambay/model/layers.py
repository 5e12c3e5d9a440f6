"""The decoder layer: pre-norm, a mixer chosen by the layer kind (mamba.py, attention.py), MLP.

Module and parameter names follow the published checkpoint: the mixer of every layer is called `attn`
(Mamba and GMU included), the diff-attention lambdas and subln live in `attn.inner_cross_attn`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..ops import elementwise
from ..ops.dispatch import AUTO, Ops
from .attention import CrossAttention, FullAttention, SlidingWindowAttention
from .config import CROSS_ATTN, FULL_ATTN, GMU, MAMBA, MAMBA_MEMORY, SSM_KINDS, SWA_ATTN, SambaYConfig
from .context import DecodeContext, PrefillContext
from .mamba import GatedMemoryUnit, Mamba
from .state import LayerState

# layer kind -> its mixer (each with its own prefill / decode over the state view it is handed)
MIXERS = {
    MAMBA: lambda config, idx: Mamba(config, exports_memory=False),
    SWA_ATTN: SlidingWindowAttention,
    MAMBA_MEMORY: lambda config, idx: Mamba(config, exports_memory=True),
    FULL_ATTN: FullAttention,
    GMU: lambda config, idx: GatedMemoryUnit(config),
    CROSS_ATTN: CrossAttention,
}


class MLP(nn.Module):
    """SwiGLU: fc1 -> [gate | up] (gate is the first half), out = fc2(up * silu(gate))."""

    def __init__(self, config: SambaYConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, ops: Ops = AUTO) -> torch.Tensor:
        return self.fc2(elementwise.swiglu(self.fc1(x), ops=ops))


class DecoderLayer(nn.Module):
    """Pre-norm layer with two residuals; `norm_in` and `finish` hold the fp32-residual rule
    (sambay.md 4.2), the mixer does the rest."""

    def __init__(self, config: SambaYConfig, layer_idx: int, kind: str):
        super().__init__()
        self.kind = kind
        H, eps = config.hidden_size, config.layer_norm_eps
        self.input_layernorm = nn.LayerNorm(H, eps=eps)
        self.post_attention_layernorm = nn.LayerNorm(H, eps=eps)
        self.attn = MIXERS[kind](config, layer_idx)
        self.mlp = MLP(config)

    def norm_in(self, h: torch.Tensor) -> torch.Tensor:
        return self.input_layernorm(h.to(self.input_layernorm.weight.dtype))

    def finish(self, h: torch.Tensor, mixed: torch.Tensor, ops: Ops = AUTO) -> torch.Tensor:
        """Residual add after the mixer (promoted to fp32 for SSM-type layers), then the MLP half."""
        residual = h.float() if self.kind in SSM_KINDS else h
        norm = self.post_attention_layernorm
        h, normed = elementwise.add_layernorm(residual, mixed, norm.weight, norm.bias, norm.eps, ops=ops)
        return h + self.mlp(normed, ops)

    def prefill(self, h: torch.Tensor, state: LayerState, ctx: PrefillContext) -> torch.Tensor:
        """h [B, T, H] -> [B, T', H]. The residual keeps the positions the mixer returned: after the
        full-attention layer of a prefill, the last one only."""
        mixed = self.attn.prefill(self.norm_in(h), state, ctx)
        if mixed.shape[1] != h.shape[1]:
            h = h[:, -mixed.shape[1] :]
        return self.finish(h, mixed, ctx.ops)

    def decode(self, h: torch.Tensor, state: LayerState, ctx: DecodeContext) -> torch.Tensor:
        """h [B, H], one token per sequence -> [B, H]."""
        return self.finish(h, self.attn.decode(self.norm_in(h), state, ctx), ctx.ops)
