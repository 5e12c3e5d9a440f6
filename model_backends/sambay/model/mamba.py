"""The SSM-type mixers: Mamba-1 (sambay.md 4.7; the one at layer L/2 also exports its ungated output as
the GMU memory) and the gated memory unit (4.8). Each has its prefill and decode over its own state."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Ops are looked up on their module at call time, so the dispatcher there (ref or kernel) decides.
from ..ops import causal_conv1d as conv_ops
from ..ops import elementwise
from ..ops import selective_scan as scan_ops
from ..ops.dispatch import AUTO, Ops
from .config import SambaYConfig
from .context import DecodeContext, PrefillContext
from .state import MambaState


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

    def _finish(self, y: torch.Tensor, z: torch.Tensor, ops: Ops = AUTO) -> MambaOutput:
        memory = y if self.exports_memory else None
        if self.exports_memory:  # the scan ran ungated so y could be exported; gate now
            y = elementwise.silu_mul(z, y, ops=ops)  # y * silu(z)
        return MambaOutput(self.out_proj(y), memory)

    def forward(self, u: torch.Tensor, ops: Ops = AUTO) -> MambaOutput:
        """u [B, T, H] -> outputs for all T, plus the conv / SSM state after the last token."""
        x, z = self.in_proj(u).chunk(2, dim=-1)
        weight = self.conv1d.weight[:, 0]
        x, conv_state = conv_ops.causal_conv1d(x.transpose(1, 2), weight, self.conv1d.bias, ops=ops)
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
            ops=ops,
        )
        result = self._finish(y.transpose(1, 2), z, ops)
        result.conv_state, result.ssm_state = conv_state, ssm_state
        return result

    def step(
        self,
        u: torch.Tensor,
        conv_state: torch.Tensor,
        ssm_state: torch.Tensor,
        slots: torch.Tensor,
        ops: Ops = AUTO,
    ) -> MambaOutput:
        """u [B, H], one token per sequence; updates conv_state / ssm_state pools at `slots`."""
        x, z = self.in_proj(u).chunk(2, dim=-1)
        weight = self.conv1d.weight[:, 0]
        x = conv_ops.causal_conv1d_update(x, conv_state, weight, self.conv1d.bias, slots, ops=ops)
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
            ops=ops,
        )
        return self._finish(y, z, ops)

    def prefill(self, u: torch.Tensor, state: MambaState | None, ctx: PrefillContext) -> torch.Tensor:
        """u [B, T, H]; the state after the last token goes to `ctx.slot` (when there is a state)."""
        result = self(u, ctx.ops)
        if self.exports_memory:
            ctx.memory = result.memory
        if state is not None:
            state.conv[ctx.slot] = result.conv_state[0]
            state.ssm[ctx.slot] = result.ssm_state[0]
        return result.out

    def decode(self, u: torch.Tensor, state: MambaState, ctx: DecodeContext) -> torch.Tensor:
        result = self.step(u, state.conv, state.ssm, ctx.slots, ctx.ops)
        if self.exports_memory:
            ctx.memory = result.memory
        return result.out


class GatedMemoryUnit(nn.Module):
    """GMU (sambay.md 4.8): out_proj(silu(in_proj(u)) * memory), memory from layer L/2 at the same token.
    It owns no state: prefill and decode are the same map."""

    def __init__(self, config: SambaYConfig):
        super().__init__()
        self.in_proj = nn.Linear(config.hidden_size, config.d_inner, bias=False)
        self.out_proj = nn.Linear(config.d_inner, config.hidden_size, bias=False)

    def forward(self, u: torch.Tensor, memory: torch.Tensor, ops: Ops = AUTO) -> torch.Tensor:
        return self.out_proj(elementwise.silu_mul(self.in_proj(u), memory, ops=ops))

    def prefill(self, u: torch.Tensor, state: None, ctx: PrefillContext) -> torch.Tensor:
        return self(u, ctx.memory, ctx.ops)

    def decode(self, u: torch.Tensor, state: None, ctx: DecodeContext) -> torch.Tensor:
        return self(u, ctx.memory, ctx.ops)
