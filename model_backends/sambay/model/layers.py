"""SambaY building blocks. Module and parameter names follow the published checkpoint: the mixer of
every layer is called `attn` (Mamba and GMU included), the diff-attention lambdas and subln live in
`attn.inner_cross_attn`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Ops are looked up on their module at call time, so the dispatcher there (ref or kernel) decides.
from ..ops import causal_conv1d as conv_ops
from ..ops import diff_attention as attention_ops
from ..ops import elementwise
from ..ops import selective_scan as scan_ops
from .config import CROSS_ATTN, GMU, MAMBA, MAMBA_MEMORY, SSM_KINDS, SambaYConfig, lambda_init


class MLP(nn.Module):
    """SwiGLU: fc1 -> [gate | up] (gate is the first half), out = fc2(up * silu(gate))."""

    def __init__(self, config: SambaYConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(elementwise.swiglu(self.fc1(x)))


@dataclass
class MambaOutput:
    out: torch.Tensor  # [..., H] after out_proj
    memory: torch.Tensor | None  # [..., d_inner] ungated y (memory layer only)
    conv_state: torch.Tensor | None = None  # [B, d_inner, d_conv] after the last token (prefill)
    ssm_state: torch.Tensor | None = None  # [B, d_inner, d_state] fp32 after the last token (prefill)


class Mamba(nn.Module):
    """Mamba-1 (sambay.md 4.7). With `exports_memory` (layer L/2) the ungated y is also returned."""

    def __init__(self, config: SambaYConfig, exports_memory: bool):
        super().__init__()
        H, C, N, R = config.hidden_size, config.d_inner, config.mamba_d_state, config.mamba_dt_rank
        self.exports_memory = exports_memory
        self.dt_rank, self.d_state = R, N
        self.in_proj = nn.Linear(H, 2 * C, bias=config.mamba_proj_bias)
        self.conv1d = nn.Conv1d(C, C, config.mamba_d_conv, groups=C, bias=config.mamba_conv_bias)
        self.x_proj = nn.Linear(C, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, C, bias=True)
        # fp32 whatever the model dtype: they enter exp() of a long recurrence.
        A_init = torch.arange(1, N + 1, dtype=torch.float32).log().expand(C, N).contiguous()
        self.A_log = nn.Parameter(A_init)  # S4D-real init, A = -(1..N); the checkpoint overwrites it
        self.D = nn.Parameter(torch.ones(C, dtype=torch.float32))
        self.out_proj = nn.Linear(C, H, bias=config.mamba_proj_bias)

    def _scan_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [..., C] post-conv -> delta without bias [..., C], B [..., N], C [..., N]."""
        dt_low, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.linear(dt_low, self.dt_proj.weight), B, C  # bias is added in fp32 inside the scan

    def _finish(self, y: torch.Tensor, z: torch.Tensor) -> MambaOutput:
        memory = y if self.exports_memory else None
        if self.exports_memory:  # the scan ran ungated so y could be exported; gate now
            y = elementwise.silu_mul(z, y)  # y * silu(z)
        return MambaOutput(self.out_proj(y), memory)

    def forward(self, u: torch.Tensor) -> MambaOutput:
        """u [B, T, H] -> outputs for all T, plus the conv / SSM state after the last token."""
        x, z = self.in_proj(u).chunk(2, dim=-1)
        x, conv_state = conv_ops.causal_conv1d(x.transpose(1, 2), self.conv1d.weight[:, 0], self.conv1d.bias)
        x = x.transpose(1, 2)  # [B, T, C]
        delta, B, C = self._scan_inputs(x)
        y, ssm_state = scan_ops.selective_scan(
            x.transpose(1, 2),
            delta.transpose(1, 2),
            -torch.exp(self.A_log.float()),
            B.transpose(1, 2),
            C.transpose(1, 2),
            self.D,
            None if self.exports_memory else z.transpose(1, 2),
            self.dt_proj.bias,
        )
        result = self._finish(y.transpose(1, 2), z)
        result.conv_state, result.ssm_state = conv_state, ssm_state
        return result

    def step(
        self, u: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor, slots: torch.Tensor
    ) -> MambaOutput:
        """u [B, H], one token per sequence; updates conv_state / ssm_state pools at `slots`."""
        x, z = self.in_proj(u).chunk(2, dim=-1)
        x = conv_ops.causal_conv1d_update(x, conv_state, self.conv1d.weight[:, 0], self.conv1d.bias, slots)
        delta, B, C = self._scan_inputs(x)
        y = scan_ops.selective_state_update(
            ssm_state,
            x,
            delta,
            -torch.exp(self.A_log.float()),
            B,
            C,
            self.D,
            None if self.exports_memory else z,
            self.dt_proj.bias,
            slots,
        )
        return self._finish(y, z)


class GatedMemoryUnit(nn.Module):
    """GMU (sambay.md 4.8): out_proj(silu(in_proj(u)) * memory), memory from layer L/2 at the same token."""

    def __init__(self, config: SambaYConfig):
        super().__init__()
        self.in_proj = nn.Linear(config.hidden_size, config.d_inner, bias=False)
        self.out_proj = nn.Linear(config.d_inner, config.hidden_size, bias=False)

    def forward(self, u: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return self.out_proj(elementwise.silu_mul(self.in_proj(u), memory))


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
    """Differential attention. Self layers project Q|K|V; cross layers project Q only and read the
    full-attention layer's K/V. No positional encoding of any kind (sambay.md 4.9)."""

    def __init__(self, config: SambaYConfig, layer_idx: int, is_cross: bool):
        super().__init__()
        self.num_heads, self.num_kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = config.head_dim
        q_width = self.num_heads * self.head_dim
        kv_width = self.num_kv_heads * self.head_dim
        self.is_cross = is_cross
        self.Wqkv = nn.Linear(config.hidden_size, q_width if is_cross else q_width + 2 * kv_width)
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

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int | None) -> torch.Tensor:
        """q [B, Tq, Hq, D] over k/v [B, Tk, Hkv, D] (causal, bottom-right) -> [B, Tq, H]."""
        return self.out_proj(attention_ops.diff_attention(q, k, v, *self._core_args(), window))

    def attend_cached(
        self,
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        slots: torch.Tensor,
        cache_lens: torch.Tensor,
    ) -> torch.Tensor:
        """q [B, Hq, D] over cache rows `slots` -> [B, H]."""
        out = attention_ops.diff_attention_decode(q, k_cache, v_cache, slots, cache_lens, *self._core_args())
        return self.out_proj(out)


class DecoderLayer(nn.Module):
    """Pre-norm layer with two residuals. The mixer call is made by the model (it depends on the mode);
    `norm_in` and `finish` hold the fp32-residual rule (sambay.md 4.2)."""

    def __init__(self, config: SambaYConfig, layer_idx: int, kind: str):
        super().__init__()
        self.kind = kind
        H, eps = config.hidden_size, config.layer_norm_eps
        self.input_layernorm = nn.LayerNorm(H, eps=eps)
        self.post_attention_layernorm = nn.LayerNorm(H, eps=eps)
        if kind in (MAMBA, MAMBA_MEMORY):
            self.attn = Mamba(config, exports_memory=kind == MAMBA_MEMORY)
        elif kind == GMU:
            self.attn = GatedMemoryUnit(config)
        else:
            self.attn = DiffAttention(config, layer_idx, is_cross=kind == CROSS_ATTN)
        self.mlp = MLP(config)

    def norm_in(self, h: torch.Tensor) -> torch.Tensor:
        return self.input_layernorm(h.to(self.input_layernorm.weight.dtype))

    def finish(self, h: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
        """Residual add after the mixer (promoted to fp32 for SSM-type layers), then the MLP half."""
        residual = h.float() if self.kind in SSM_KINDS else h
        norm = self.post_attention_layernorm
        h, normed = elementwise.add_layernorm(residual, mixed, norm.weight, norm.bias, norm.eps)
        return h + self.mlp(normed)
