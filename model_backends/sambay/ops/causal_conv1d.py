"""Depthwise causal conv1d of the Mamba block (kernel d_conv, with bias, then SiLU).

State convention (HF, sambay.md 5.1): the conv state holds the last d_conv *raw* (pre-conv) inputs,
left-zero-padded, so the decode step is shift-left, append, dot with the kernel.

Each op has a pure-PyTorch `_ref` (the oracle, and the CPU path) and a Triton twin; the dispatchers
`causal_conv1d` (prefill) and `causal_conv1d_update` (decode) pick the kernel for CUDA tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model_backends.sambay.ops.dispatch import AUTO, FP_FUSION, Ops
from model_backends.sambay.ops.layout import empty_channels_last_like


def causal_conv1d_ref(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prefill: silu(causal depthwise conv) over a whole sequence, zero history before the first token.

    Args:
        x: [B, C, T] raw inputs.
        weight: [C, K] depthwise kernel (the checkpoint's [C, 1, K] squeezed).
        bias: [C] or None.
    Returns:
        out: [B, C, T] in x.dtype; out[..., t] = silu(sum_k weight[:, k] * x[..., t - K + 1 + k] + bias).
        conv_state: [B, C, K] the last K raw inputs (left-zero-padded when T < K), for decoding.
    """
    K = weight.shape[-1]
    T = x.shape[-1]
    out = F.conv1d(F.pad(x.float(), (K - 1, 0)), weight.float()[:, None, :], None, groups=x.shape[1])
    if bias is not None:
        out = out + bias.float()[:, None]
    conv_state = F.pad(x, (K - T, 0)) if T < K else x[..., T - K :]
    return F.silu(out).to(x.dtype), conv_state.contiguous()


def causal_conv1d_update_ref(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    slots: torch.Tensor,
) -> torch.Tensor:
    """Decode: one token per sequence; updates conv_state[slots] in place.

    Args:
        x: [B, C] the new raw input of each sequence.
        conv_state: [num_slots, C, K] pool; rows `slots` are shifted left and x appended.
        weight: [C, K]; bias: [C] or None.
        slots: [B] long, the pool row of each sequence.
    Returns:
        out: [B, C] in x.dtype, silu(sum_k weight[:, k] * state[:, :, k] + bias).
        A pad slot (-1) gives a zero output row and leaves the pool untouched.
    """
    valid = _pad_aware(slots)
    if valid is not None:
        out = x.new_zeros(x.shape)
        out[valid] = causal_conv1d_update_ref(x[valid], conv_state, weight, bias, slots[valid])
        return out
    state = torch.cat([conv_state[slots, :, 1:], x[:, :, None].to(conv_state.dtype)], dim=-1)
    conv_state[slots] = state
    out = (state.float() * weight.float()).sum(-1)
    if bias is not None:
        out = out + bias.float()
    return F.silu(out).to(x.dtype)


def _pad_aware(slots: torch.Tensor) -> torch.Tensor | None:
    """Boolean mask of real rows when any slot is a pad (-1), else None (the common, sync-free case)."""
    valid = slots >= 0
    return None if bool(valid.all()) else valid


try:  # Triton is optional: the CPU build and the reference path never need it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is absent
    triton = None

if triton is not None:

    @triton.jit
    def _causal_conv1d_update_kernel(
        x_ptr, state_ptr, w_ptr, bias_ptr, slots_ptr, out_ptr,
        num_channels,
        stride_x_b, stride_x_c,
        stride_s_slot, stride_s_c, stride_s_k,
        stride_w_c, stride_w_k,
        stride_out_b, stride_out_c,
        K: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_C: tl.constexpr,
    ):  # fmt: skip
        # One program per (sequence, channel block). Channels are a 1-D vector so each thread reads
        # state column k+1 and then writes column k of the *same* channels: the in-place shift needs
        # no barrier because no thread overwrites a value another thread has yet to read.
        b = tl.program_id(0)
        cs = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
        cmask = cs < num_channels
        slot = tl.load(slots_ptr + b).to(tl.int64)
        # pad rows (-1) leave every slot untouched; the slot is broadcast to a vector first because
        # the interpreter rejects a mask built from a scalar bool
        is_real = (tl.zeros([BLOCK_C], dtype=tl.int64) + slot) >= 0
        live = cmask & is_real
        row = state_ptr + slot * stride_s_slot + cs * stride_s_c
        acc = tl.zeros([BLOCK_C], dtype=tl.float32)
        for k in tl.static_range(K - 1):
            v = tl.load(row + (k + 1) * stride_s_k, mask=live, other=0.0)
            tl.store(row + k * stride_s_k, v, mask=live)
            w = tl.load(w_ptr + cs * stride_w_c + k * stride_w_k, mask=cmask, other=0.0)
            acc += v.to(tl.float32) * w.to(tl.float32)
        xv = tl.load(x_ptr + b * stride_x_b + cs * stride_x_c, mask=cmask, other=0.0)
        xs = xv.to(state_ptr.dtype.element_ty)  # the ref rounds x to the state dtype before the dot
        tl.store(row + (K - 1) * stride_s_k, xs, mask=live)
        w = tl.load(w_ptr + cs * stride_w_c + (K - 1) * stride_w_k, mask=cmask, other=0.0)
        acc += xs.to(tl.float32) * w.to(tl.float32)
        if HAS_BIAS:
            acc += tl.load(bias_ptr + cs, mask=cmask, other=0.0).to(tl.float32)
        y = acc / (1.0 + tl.exp(-acc))  # silu in fp32
        y = tl.where(is_real, y, 0.0)
        tl.store(out_ptr + b * stride_out_b + cs * stride_out_c, y.to(out_ptr.dtype.element_ty), mask=cmask)


def causal_conv1d_update_triton(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    slots: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Triton twin of `causal_conv1d_update_ref` (same shapes, same in-place state update).

    Inputs may be strided views (x comes from `in_proj(u).chunk(2)`). Pad slots (-1) give zero
    output rows and touch no state. `out` ([B, C], x.dtype) lets a caller supply a static buffer
    (CUDA graphs, NaN-poisoned tests); it is returned.
    """
    batch, channels = x.shape
    if out is None:
        out = torch.empty(batch, channels, dtype=x.dtype, device=x.device)
    if batch == 0:
        return out
    block_c = min(256, triton.next_power_of_2(channels))
    grid = (batch, triton.cdiv(channels, block_c))
    _causal_conv1d_update_kernel[grid](
        x, conv_state, weight, bias if bias is not None else weight, slots, out,
        channels,
        x.stride(0), x.stride(1),
        conv_state.stride(0), conv_state.stride(1), conv_state.stride(2),
        weight.stride(0), weight.stride(1),
        out.stride(0), out.stride(1),
        K=weight.shape[-1], HAS_BIAS=bias is not None, BLOCK_C=block_c,
        enable_fp_fusion=FP_FUSION,
    )  # fmt: skip
    return out


def causal_conv1d_update(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    slots: torch.Tensor,
    *,
    ops: Ops = AUTO,
) -> torch.Tensor:
    """Dispatcher: the Triton kernel for CUDA tensors when triton imports, else the reference."""
    if ops.use_triton("causal_conv1d_update", x, triton is not None):
        return causal_conv1d_update_triton(x, conv_state, weight, bias, slots)
    return causal_conv1d_update_ref(x, conv_state, weight, bias, slots)


if triton is not None:

    @triton.jit
    def _causal_conv1d_kernel(
        x_ptr, w_ptr, bias_ptr, out_ptr, state_ptr,
        num_channels, seqlen,
        stride_x_b, stride_x_c, stride_x_t,
        stride_w_c, stride_w_k,
        stride_out_b, stride_out_c, stride_out_t,
        stride_s_b, stride_s_c, stride_s_k,
        K: tl.constexpr, HAS_BIAS: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_K: tl.constexpr,
    ):  # fmt: skip
        # One program per (sequence, channel block, time block). Tap k of output t reads input
        # t - (K - 1) + k, so the program reads its time block plus the K - 1 columns before it (zero
        # before the first token); the K shifted tile loads overlap, so most of their lines are cached.
        b = tl.program_id(0).to(tl.int64)
        cs = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
        t_block = tl.program_id(2)
        ts = t_block * BLOCK_T + tl.arange(0, BLOCK_T)
        cmask = cs < num_channels
        x_rows = x_ptr + b * stride_x_b + cs[:, None] * stride_x_c
        acc = tl.zeros([BLOCK_C, BLOCK_T], dtype=tl.float32)
        for k in tl.static_range(K):
            src = ts - (K - 1 - k)
            m = cmask[:, None] & ((src >= 0) & (src < seqlen))[None, :]
            xv = tl.load(x_rows + src.to(tl.int64)[None, :] * stride_x_t, mask=m, other=0.0)
            w = tl.load(w_ptr + cs * stride_w_c + k * stride_w_k, mask=cmask, other=0.0)
            acc += xv.to(tl.float32) * w.to(tl.float32)[:, None]
        if HAS_BIAS:
            acc += tl.load(bias_ptr + cs, mask=cmask, other=0.0).to(tl.float32)[:, None]
        y = acc / (1.0 + tl.exp(-acc))  # silu in fp32
        out_tile = (
            out_ptr + b * stride_out_b + cs[:, None] * stride_out_c + ts.to(tl.int64)[None, :] * stride_out_t
        )
        tl.store(out_tile, y.to(out_ptr.dtype.element_ty), mask=cmask[:, None] & (ts < seqlen)[None, :])

        if t_block == tl.num_programs(2) - 1:  # the last time block also writes the decode state
            ks = tl.arange(0, BLOCK_K)
            last = seqlen - K + ks  # the last K raw inputs, zeros where the sequence is shorter
            last_mask = cmask[:, None] & ((ks < K) & (last >= 0))[None, :]
            v = tl.load(x_rows + last.to(tl.int64)[None, :] * stride_x_t, mask=last_mask, other=0.0)
            state_tile = state_ptr + b * stride_s_b + cs[:, None] * stride_s_c + ks[None, :] * stride_s_k
            tl.store(state_tile, v.to(state_ptr.dtype.element_ty), mask=cmask[:, None] & (ks < K)[None, :])


def _conv_blocks(channels: int, seqlen: int) -> tuple[int, int]:
    """(BLOCK_C, BLOCK_T) of the prefill kernel: 64 x 32 tiles, narrower in time for short prompts."""
    return min(64, triton.next_power_of_2(channels)), min(32, triton.next_power_of_2(max(seqlen, 1)))


def causal_conv1d_triton(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    out: torch.Tensor | None = None,
    conv_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton twin of `causal_conv1d_ref`: silu(causal depthwise conv + bias), computed in fp32.

    Args:
        x: [B, C, T] raw inputs; may be a strided view (the layer passes in_proj(u).chunk(2)[0]
            transposed, channel stride 1).
        weight: [C, K]; bias: [C] or None.
        out: optional [B, C, T] x.dtype buffer (static buffers, NaN-poisoned tests); by default it is
            allocated with x's memory order ([B, T, C] underneath when x's channel stride is 1).
        conv_state: optional [B, C, K] x.dtype buffer; by default a contiguous one.
    Returns:
        out: [B, C, T] in x.dtype.
        conv_state: [B, C, K] the last K raw inputs, left-zero-padded when T < K.
    """
    batch, channels, seqlen = x.shape
    K = weight.shape[-1]
    if out is None:
        out = empty_channels_last_like(x)
    if conv_state is None:
        conv_state = torch.empty(batch, channels, K, dtype=x.dtype, device=x.device)
    if batch == 0 or channels == 0:
        return out, conv_state
    block_c, block_t = _conv_blocks(channels, seqlen)
    grid = (batch, triton.cdiv(channels, block_c), max(1, triton.cdiv(seqlen, block_t)))
    _causal_conv1d_kernel[grid](
        x, weight, bias if bias is not None else weight, out, conv_state,
        channels, seqlen,
        x.stride(0), x.stride(1), x.stride(2),
        weight.stride(0), weight.stride(1),
        out.stride(0), out.stride(1), out.stride(2),
        conv_state.stride(0), conv_state.stride(1), conv_state.stride(2),
        K=K, HAS_BIAS=bias is not None,
        BLOCK_C=block_c, BLOCK_T=block_t, BLOCK_K=triton.next_power_of_2(K),
        num_warps=4,
        enable_fp_fusion=FP_FUSION,
    )  # fmt: skip
    return out, conv_state


def causal_conv1d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, ops: Ops = AUTO
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatcher: the Triton kernel for CUDA tensors when triton imports, else the reference."""
    if ops.use_triton("causal_conv1d", x, triton is not None):
        return causal_conv1d_triton(x, weight, bias)
    return causal_conv1d_ref(x, weight, bias)
