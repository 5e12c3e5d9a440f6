"""Mamba-1 selective scan (sambay.md 4.7 steps 4-7), computed in fp32 like the CUDA kernels.

delta = softplus(delta + delta_bias)            per channel c, time t
h_t   = exp(delta_t[c] * A[c, n]) * h_{t-1} + delta_t[c] * B_t[n] * u_t[c]
y_t   = sum_n h_t[c, n] * C_t[n] + D[c] * u_t[c]       (then * silu(z_t) when z is given)

Each op has a pure-PyTorch `_ref` (the oracle, and the CPU path) and a Triton twin; the dispatchers
`selective_scan` (prefill) and `selective_state_update` (decode) pick the kernel for CUDA tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model_backends.sambay.ops.dispatch import AUTO, FP_FUSION, Ops
from model_backends.sambay.ops.layout import empty_channels_last_like


def selective_scan_ref(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prefill scan from a zero state over a whole sequence (delta_softplus always on for SambaY).

    Args:
        u: [B, C, T] conv output (post-SiLU).
        delta: [B, C, T] dt_proj(dt_low) *without* its bias.
        A: [C, N] = -exp(A_log), fp32.
        B, C: [B, N, T] input / output projections, shared by all channels (one group).
        D: [C] skip, fp32.
        z: [B, C, T] gate or None (None returns the ungated y, used for the GMU memory).
        delta_bias: [C] dt_proj bias, added in fp32 before softplus.
    Returns:
        y: [B, C, T] in u.dtype.
        last_state: [B, C, N] fp32, h after the last token.
    """
    dtype = u.dtype
    u, delta, B, C = u.float(), delta.float(), B.float(), C.float()
    delta = F.softplus(delta + delta_bias.float()[:, None])
    A = A.float()
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[-1]):  # per step, so memory stays O(B*C*N) for long prompts
        dt = delta[:, :, t]
        h = torch.exp(dt[..., None] * A) * h + (dt * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1) + D.float()[:, None] * u
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype), h


def selective_state_update_ref(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    z: torch.Tensor | None,
    dt_bias: torch.Tensor,
    slots: torch.Tensor,
) -> torch.Tensor:
    """Decode: one scan step per sequence; updates state[slots] in place.

    Args:
        state: [num_slots, C, N] fp32 pool.
        x: [B, C] conv output; dt: [B, C] dt_proj(dt_low) without bias.
        A: [C, N]; B, C: [B, N]; D: [C]; z: [B, C] or None; dt_bias: [C].
        slots: [B] long, the pool row of each sequence.
    Returns:
        y: [B, C] in x.dtype.
        A pad slot (-1) gives a zero output row and leaves the pool untouched.
    """
    valid = slots >= 0
    if not bool(valid.all()):  # pad rows present: run the real rows only
        y = x.new_zeros(x.shape)
        y[valid] = selective_state_update_ref(
            state,
            x[valid],
            dt[valid],
            A,
            B[valid],
            C[valid],
            D,
            None if z is None else z[valid],
            dt_bias,
            slots[valid],
        )
        return y
    dtype = x.dtype
    x, B, C = x.float(), B.float(), C.float()
    dt = F.softplus(dt.float() + dt_bias.float())
    h = state[slots].float()
    h = torch.exp(dt[..., None] * A.float()) * h + (dt * x)[..., None] * B[:, None, :]
    state[slots] = h.to(state.dtype)
    y = (h * C[:, None, :]).sum(-1) + D.float() * x
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype)


try:  # Triton is optional: the CPU build and the reference path never need it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is absent
    triton = None

if triton is not None:

    @triton.jit
    def _selective_state_update_kernel(
        state_ptr, x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, dt_bias_ptr, slots_ptr, out_ptr,
        num_channels, d_state,
        stride_s_slot, stride_s_c, stride_s_n,
        stride_x_b, stride_x_c,
        stride_dt_b, stride_dt_c,
        stride_A_c, stride_A_n,
        stride_B_b, stride_B_n,
        stride_C_b, stride_C_n,
        stride_D_c,
        stride_z_b, stride_z_c,
        stride_dtb_c,
        stride_out_b, stride_out_c,
        HAS_Z: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr,
    ):  # fmt: skip
        # One program per (sequence, channel block), holding a [BLOCK_C, d_state] state tile. Each
        # element is loaded and stored by the same thread, so the in-place update needs no barrier.
        b = tl.program_id(0)
        cs = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
        ns = tl.arange(0, BLOCK_N)
        cmask = cs < num_channels
        nmask = ns < d_state
        tile_mask = cmask[:, None] & nmask[None, :]
        slot = tl.load(slots_ptr + b).to(tl.int64)
        # pad rows (-1) leave every slot untouched; the slot is broadcast to a vector first because
        # the interpreter rejects a mask built from a scalar bool
        is_real = (tl.zeros([BLOCK_C], dtype=tl.int64) + slot) >= 0
        live = tile_mask & is_real[:, None]

        x = tl.load(x_ptr + b * stride_x_b + cs * stride_x_c, mask=cmask, other=0.0).to(tl.float32)
        dt = tl.load(dt_ptr + b * stride_dt_b + cs * stride_dt_c, mask=cmask, other=0.0).to(tl.float32)
        dt += tl.load(dt_bias_ptr + cs * stride_dtb_c, mask=cmask, other=0.0).to(tl.float32)
        # softplus with torch's threshold (identity above 20, where exp would overflow soon anyway)
        dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)
        A = tl.load(
            A_ptr + cs[:, None] * stride_A_c + ns[None, :] * stride_A_n, mask=tile_mask, other=0.0
        ).to(tl.float32)
        Bv = tl.load(B_ptr + b * stride_B_b + ns * stride_B_n, mask=nmask, other=0.0).to(tl.float32)
        Cv = tl.load(C_ptr + b * stride_C_b + ns * stride_C_n, mask=nmask, other=0.0).to(tl.float32)

        state_tile = state_ptr + slot * stride_s_slot + cs[:, None] * stride_s_c + ns[None, :] * stride_s_n
        h = tl.load(state_tile, mask=live, other=0.0).to(tl.float32)
        h = tl.exp(dt[:, None] * A) * h + (dt * x)[:, None] * Bv[None, :]
        tl.store(state_tile, h.to(state_ptr.dtype.element_ty), mask=live)

        y = tl.sum(h * Cv[None, :], axis=1)
        y += tl.load(D_ptr + cs * stride_D_c, mask=cmask, other=0.0).to(tl.float32) * x
        if HAS_Z:
            z = tl.load(z_ptr + b * stride_z_b + cs * stride_z_c, mask=cmask, other=0.0).to(tl.float32)
            y *= z / (1.0 + tl.exp(-z))
        y = tl.where(is_real, y, 0.0)
        tl.store(out_ptr + b * stride_out_b + cs * stride_out_c, y.to(out_ptr.dtype.element_ty), mask=cmask)


def selective_state_update_triton(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    z: torch.Tensor | None,
    dt_bias: torch.Tensor,
    slots: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Triton twin of `selective_state_update_ref`: one fp32 step, D skip and z gate fused.

    Inputs may be strided views (B and C come from a `split` of x_proj). Pad slots (-1) give zero
    output rows and touch no state. `out` ([B, C], x.dtype) lets a caller supply a static buffer.
    Not autotuned on purpose: autotuning reruns the kernel, which would step the state twice.
    """
    batch, channels = x.shape
    d_state = state.shape[-1]
    if out is None:
        out = torch.empty(batch, channels, dtype=x.dtype, device=x.device)
    if batch == 0:
        return out
    block_n = triton.next_power_of_2(d_state)
    block_c = max(1, min(triton.next_power_of_2(channels), 2048 // block_n))  # ~2K state values per program
    grid = (batch, triton.cdiv(channels, block_c))
    z_arg = z if z is not None else x
    _selective_state_update_kernel[grid](
        state, x, dt, A, B, C, D, z_arg, dt_bias, slots, out,
        channels, d_state,
        state.stride(0), state.stride(1), state.stride(2),
        x.stride(0), x.stride(1),
        dt.stride(0), dt.stride(1),
        A.stride(0), A.stride(1),
        B.stride(0), B.stride(1),
        C.stride(0), C.stride(1),
        D.stride(0),
        z_arg.stride(0), z_arg.stride(1),
        dt_bias.stride(0),
        out.stride(0), out.stride(1),
        HAS_Z=z is not None, BLOCK_C=block_c, BLOCK_N=block_n,
        enable_fp_fusion=FP_FUSION,
    )  # fmt: skip
    return out


def selective_state_update(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    z: torch.Tensor | None,
    dt_bias: torch.Tensor,
    slots: torch.Tensor,
    *,
    ops: Ops = AUTO,
) -> torch.Tensor:
    """Dispatcher: the Triton kernel for CUDA tensors when triton imports, else the reference."""
    use = ops.use_triton("selective_state_update", x, triton is not None)
    op = selective_state_update_triton if use else selective_state_update_ref
    return op(state, x, dt, A, B, C, D, z, dt_bias, slots)


if triton is not None:

    @triton.jit
    def _scan_load_step(
        u_p, dt_p, z_p, B_p, C_p, t, seqlen, cmask, nmask, dt_bias,
        HAS_Z: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr,
    ):  # fmt: skip
        """The fp32 inputs of time step t: u, softplus(delta + bias), silu(z) as [1, BLOCK_C] rows and
        B_t, C_t as [BLOCK_N, 1] columns. Past the end of the sequence everything is zero, delta
        included, so that step leaves the state exactly as it is (exp(0) * h + 0)."""
        # the step is broadcast to a vector first because the interpreter rejects a scalar-bool mask
        live_c = cmask & ((tl.zeros([1, BLOCK_C], dtype=tl.int32) + t) < seqlen)
        live_n = nmask & ((tl.zeros([BLOCK_N, 1], dtype=tl.int32) + t) < seqlen)
        u = tl.load(u_p, mask=live_c, other=0.0).to(tl.float32)
        dt = tl.load(dt_p, mask=live_c, other=0.0).to(tl.float32) + dt_bias
        # softplus with torch's threshold (identity above 20)
        dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)
        dt = tl.where(live_c, dt, 0.0)
        if HAS_Z:
            z = tl.load(z_p, mask=live_c, other=0.0).to(tl.float32)
            gate = z / (1.0 + tl.exp(-z))
        else:
            gate = u  # unused
        Bv = tl.load(B_p, mask=live_n, other=0.0).to(tl.float32)
        Cv = tl.load(C_p, mask=live_n, other=0.0).to(tl.float32)
        return u, dt, gate, Bv, Cv

    @triton.jit
    def _scan_step(h, A, D, u, dt, gate, Bv, Cv, HAS_Z: tl.constexpr):
        """One recurrence step on the [BLOCK_N, BLOCK_C] fp32 state; returns (h, y_t [1, BLOCK_C])."""
        h = tl.exp(dt * A) * h + (dt * u) * Bv
        y = tl.sum(h * Cv, axis=0, keep_dims=True) + D * u
        if HAS_Z:
            y = y * gate
        return h, y

    @triton.jit
    def _selective_scan_kernel(
        u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, dt_bias_ptr, out_ptr, state_ptr,
        num_channels, d_state, seqlen,
        stride_u_b, stride_u_c, stride_u_t,
        stride_dt_b, stride_dt_c, stride_dt_t,
        stride_A_c, stride_A_n,
        stride_B_b, stride_B_n, stride_B_t,
        stride_C_b, stride_C_n, stride_C_t,
        stride_D_c,
        stride_z_b, stride_z_c, stride_z_t,
        stride_dtb_c,
        stride_out_b, stride_out_c, stride_out_t,
        stride_s_b, stride_s_c, stride_s_n,
        HAS_Z: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr,
    ):  # fmt: skip
        # One program per (sequence, channel block) walks time with the fp32 state in registers. The
        # state tile is [BLOCK_N, BLOCK_C], channels last: with BLOCK_C = 32 * num_warps Triton's
        # default layout gives each thread one channel and all its states, so the sum over states is
        # in-thread and per-step channel values (u, delta, z, y) need no layout conversion (no shared
        # memory, no barrier inside the loop). Two steps per iteration: the inputs of the next two
        # steps are loaded before the current two are computed, so their latency overlaps the
        # arithmetic (the only loop-carried dependency is h). Pointers advance by their time stride,
        # so no offset is ever formed as t * stride (no int32 overflow on long prompts).
        b = tl.program_id(0).to(tl.int64)
        cs = (tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C))[None, :]
        ns = tl.arange(0, BLOCK_N)[:, None]
        cmask = cs < num_channels
        nmask = ns < d_state
        tile_mask = nmask & cmask
        # padded states (n >= d_state) get A = 0, B = C = 0: they stay 0 and add nothing to y
        A = tl.load(A_ptr + cs * stride_A_c + ns * stride_A_n, mask=tile_mask, other=0.0).to(tl.float32)
        D = tl.load(D_ptr + cs * stride_D_c, mask=cmask, other=0.0).to(tl.float32)
        dt_bias = tl.load(dt_bias_ptr + cs * stride_dtb_c, mask=cmask, other=0.0).to(tl.float32)

        u_p = u_ptr + b * stride_u_b + cs * stride_u_c
        dt_p = dt_ptr + b * stride_dt_b + cs * stride_dt_c
        z_p = z_ptr + b * stride_z_b + cs * stride_z_c
        B_p = B_ptr + b * stride_B_b + ns * stride_B_n
        C_p = C_ptr + b * stride_C_b + ns * stride_C_n
        y_p = out_ptr + b * stride_out_b + cs * stride_out_c

        u0, dt0, g0, B0, C0 = _scan_load_step(
            u_p, dt_p, z_p, B_p, C_p, 0, seqlen, cmask, nmask, dt_bias, HAS_Z, BLOCK_C, BLOCK_N
        )
        u1, dt1, g1, B1, C1 = _scan_load_step(
            u_p + stride_u_t, dt_p + stride_dt_t, z_p + stride_z_t, B_p + stride_B_t, C_p + stride_C_t,
            1, seqlen, cmask, nmask, dt_bias, HAS_Z, BLOCK_C, BLOCK_N,
        )  # fmt: skip
        h = tl.zeros([BLOCK_N, BLOCK_C], dtype=tl.float32)
        for t in range(0, seqlen, 2):
            u_p += 2 * stride_u_t
            dt_p += 2 * stride_dt_t
            z_p += 2 * stride_z_t
            B_p += 2 * stride_B_t
            C_p += 2 * stride_C_t
            u2, dt2, g2, B2, C2 = _scan_load_step(
                u_p, dt_p, z_p, B_p, C_p, t + 2, seqlen, cmask, nmask, dt_bias, HAS_Z, BLOCK_C, BLOCK_N
            )
            u3, dt3, g3, B3, C3 = _scan_load_step(
                u_p + stride_u_t, dt_p + stride_dt_t, z_p + stride_z_t, B_p + stride_B_t, C_p + stride_C_t,
                t + 3, seqlen, cmask, nmask, dt_bias, HAS_Z, BLOCK_C, BLOCK_N,
            )  # fmt: skip

            h, y = _scan_step(h, A, D, u0, dt0, g0, B0, C0, HAS_Z)
            tl.store(y_p, y.to(out_ptr.dtype.element_ty), mask=cmask)  # t < seqlen: the loop bound
            h, y = _scan_step(h, A, D, u1, dt1, g1, B1, C1, HAS_Z)  # a no-op past the end
            second = cmask & ((tl.zeros([1, BLOCK_C], dtype=tl.int32) + t + 1) < seqlen)
            tl.store(y_p + stride_out_t, y.to(out_ptr.dtype.element_ty), mask=second)
            y_p += 2 * stride_out_t

            u0, dt0, g0, B0, C0 = u2, dt2, g2, B2, C2
            u1, dt1, g1, B1, C1 = u3, dt3, g3, B3, C3

        state_tile = state_ptr + b * stride_s_b + cs * stride_s_c + ns * stride_s_n
        tl.store(state_tile, h, mask=tile_mask)


def _scan_blocks(channels: int, d_state: int) -> tuple[int, int, int]:
    """(BLOCK_C, BLOCK_N, num_warps) of the prefill kernel: 32 channels per warp, one per thread
    (holding all d_state states), up to 4 warps per program."""
    block_c = min(128, triton.next_power_of_2(channels))
    return block_c, triton.next_power_of_2(d_state), max(1, min(4, block_c // 32))


def selective_scan_triton(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
    last_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton twin of `selective_scan_ref`: fp32 scan from a zero state, D skip and z gate fused.

    Args:
        u, delta: [B, C, T]; z: [B, C, T] or None (None returns the ungated y).
        A: [C, N] fp32; D, delta_bias: [C] fp32.
        B, C: [B, N, T]. All may be strided views (the layer passes transposes of [B, T, *] tensors;
            B and C come from a split of x_proj).
        out: optional [B, C, T] u.dtype buffer (static buffers, NaN-poisoned tests); by default it is
            allocated with u's memory order ([B, T, C] underneath when u's channel stride is 1).
        last_state: optional [B, C, N] fp32 buffer; by default a contiguous one.
    Returns:
        y: [B, C, T] in u.dtype.
        last_state: [B, C, N] fp32, h after the last token.
    """
    batch, channels, seqlen = u.shape
    d_state = A.shape[-1]
    if out is None:
        out = empty_channels_last_like(u)
    if last_state is None:
        last_state = torch.empty(batch, channels, d_state, dtype=torch.float32, device=u.device)
    if batch == 0 or channels == 0:
        return out, last_state
    block_c, block_n, num_warps = _scan_blocks(channels, d_state)
    grid = (batch, triton.cdiv(channels, block_c))
    z_arg = z if z is not None else u
    _selective_scan_kernel[grid](
        u, delta, A, B, C, D, z_arg, delta_bias, out, last_state,
        channels, d_state, seqlen,
        u.stride(0), u.stride(1), u.stride(2),
        delta.stride(0), delta.stride(1), delta.stride(2),
        A.stride(0), A.stride(1),
        B.stride(0), B.stride(1), B.stride(2),
        C.stride(0), C.stride(1), C.stride(2),
        D.stride(0),
        z_arg.stride(0), z_arg.stride(1), z_arg.stride(2),
        delta_bias.stride(0),
        out.stride(0), out.stride(1), out.stride(2),
        last_state.stride(0), last_state.stride(1), last_state.stride(2),
        HAS_Z=z is not None, BLOCK_C=block_c, BLOCK_N=block_n,
        num_warps=num_warps,
        enable_fp_fusion=FP_FUSION,
    )  # fmt: skip
    return out, last_state


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor,
    *,
    ops: Ops = AUTO,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatcher: the Triton kernel for CUDA tensors when triton imports, else the reference."""
    use = ops.use_triton("selective_scan", u, triton is not None)
    op = selective_scan_triton if use else selective_scan_ref
    return op(u, delta, A, B, C, D, z, delta_bias)
