"""Differential attention core (sambay.md 4.4 steps 2-10), shared by SWA, full and cross layers.

Heads are split into interleaved halves (Q1 = even Q heads, Q2 = odd; K/V likewise); inside each half
GQA maps q-half head j to kv-half head j // group. Each half's softmax attends over [V1 | V2]
(2 * head_dim wide), the two results combine as A1 - lambda * A2, then RMSNorm (HF variant) over
2 * head_dim, scale (1 - lambda_init), and re-interleave: output head 2j = first head_dim features of
pair j, head 2j+1 = the rest. Softmax and products run in fp32, results cast to q.dtype (as flash does).

Each op has a pure-PyTorch `_ref` and a Triton `_triton` twin; the dispatchers `diff_attention` and
`diff_attention_decode` pick the kernel for CUDA tensors (ops/dispatch.py). The kernels work per KV
*pair* j = (K[2j], K[2j+1], V[2j], V[2j+1]): it is read by exactly the 2 * group contiguous Q heads
2*j*group .. 2*(j+1)*group - 1 (even ones in half 1 with K[2j], odd ones in half 2 with K[2j+1], both
over [V[2j] | V[2j+1]]), so one program does both halves and the whole GQA group and reads each K/V
byte once (the four-call formulation reads each twice), with an online softmax over key blocks in fp32
and the combine + RMSNorm + scale fused at the end. Decode: one program per (sequence, pair, key split),
the splits (flash-decoding, only when the batch gives too few programs for the SMs) merged by a second
kernel. Prefill: one program per (query tile, pair, sequence) over just the key tiles its causal /
window mask reaches. bf16 inputs feed the tensor cores in bf16 (Q.K products are exact in fp32; P is
rounded to V's dtype before P.V, as flash does); fp32 inputs, or caches in another dtype than q, run
in fp32 throughout. The epilogue rounds to q.dtype at the same points as the reference.
"""

from __future__ import annotations

import functools
import os

import torch

from model_backends.sambay.ops.dispatch import AUTO, FP_FUSION, Ops


def window_mask(num_queries: int, num_keys: int, window: int | None, device=None) -> torch.Tensor:
    """[Tq, Tk] bool, bottom-right aligned: query i sits at key position p = i + Tk - Tq and sees keys
    j <= p, and with a window only p - j < window (window keys *including* the current one)."""
    p = torch.arange(num_queries, device=device)[:, None] + (num_keys - num_queries)
    j = torch.arange(num_keys, device=device)[None, :]
    allowed = j <= p
    if window is not None:
        allowed &= (p - j) < window
    return allowed


def _combine(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    allowed: torch.Tensor,
    lam: torch.Tensor,
    lambda_init: float,
    subln_weight: torch.Tensor,
    eps: float,
) -> torch.Tensor:
    """q [B, Tq, Hq, D], k/v [B, Tk, Hkv, D], allowed broadcastable to [B, Tq, Tk] -> [B, Tq, Hq*D].

    Written with views, not gathers: q-half head i (Q head 2i + half) is (pair j, member g) with
    i = j * group + g, K head 2j + half is its key, and v.view(..., Hkv/2, 2D) is already the pair
    [V[2j] | V[2j+1]]; so both halves of every group go through one batched matmul with no repeat.
    """
    B, Tq, Hq, D = q.shape
    Tk, Hkv = k.shape[1], k.shape[2]
    group, pairs = Hq // Hkv, Hkv // 2
    qf = q.float().reshape(B, Tq, pairs, group, 2, D).permute(0, 4, 2, 3, 1, 5)  # [B, half, j, g, Tq, D]
    qf = qf.reshape(B, 2, pairs, group * Tq, D)
    kf = k.float().reshape(B, Tk, pairs, 2, D).permute(0, 3, 2, 1, 4)  # [B, half, j, Tk, D]
    v_pair = v.float().reshape(B, Tk, pairs, 2 * D).permute(0, 2, 1, 3)[:, None]  # [B, 1, j, Tk, 2D]
    mask = allowed if allowed.dim() == 3 else allowed[None]  # [B or 1, Tq, Tk]
    mask = (
        mask[:, None, None, None].expand(-1, 1, 1, group, Tq, Tk).reshape(mask.shape[0], 1, 1, group * Tq, Tk)
    )
    scores = (qf @ kf.transpose(-1, -2)) * D**-0.5  # [B, half, j, g * Tq, Tk]
    probs = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    both = (probs @ v_pair).to(q.dtype)  # [B, half, j, g * Tq, 2D]
    # back to [B, Tq, Hq/2, 2D] with q-half head i = j * group + g
    both = (
        both.reshape(B, 2, pairs, group, Tq, 2 * D)
        .permute(0, 1, 4, 2, 3, 5)
        .reshape(B, 2, Tq, Hq // 2, 2 * D)
    )
    halves = (both[:, 0], both[:, 1])
    out = halves[0] - lam.to(q.dtype) * halves[1]  # [B, Tq, Hq/2, 2D]
    # subln, HF variant: normalize in fp32, cast back, then multiply by the weight.
    of = out.float()
    out = (of * torch.rsqrt(of.pow(2).mean(-1, keepdim=True) + eps)).to(q.dtype) * subln_weight
    out = out * (1.0 - lambda_init)
    return out.reshape(B, Tq, Hq * D)  # [Hq/2, 2D] flattened == heads 2j, 2j+1 re-interleaved


def diff_attention_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    lam: torch.Tensor,
    lambda_init: float,
    subln_weight: torch.Tensor,
    eps: float,
    window: int | None,
    query_chunk: int = 1024,
) -> torch.Tensor:
    """Prefill / full forward: causal (optionally windowed) differential attention.

    Args:
        q: [B, Tq, Hq, D]; k, v: [B, Tk, Hkv, D] with Tk >= Tq (queries are the last Tq positions).
        lam: scalar tensor, lambda of this layer; lambda_init: float by global layer index.
        subln_weight: [2D]; eps: RMSNorm epsilon.
        window: keys visible including the current token (SWA layers) or None (full / cross).
        query_chunk: queries per block; bounds the [Tq, Tk] score memory of long prompts, and a windowed
            block only reads the keys its window reaches.
    Returns:
        [B, Tq, Hq * D] in q.dtype (before out_proj).
    """
    Tq, Tk = q.shape[1], k.shape[1]
    offset = Tk - Tq  # query i sits at key position i + offset
    blocks = []
    for start in range(0, Tq, query_chunk):
        end = min(start + query_chunk, Tq)
        k_start = 0 if window is None else max(0, start + offset - window + 1)
        k_end = end + offset
        allowed = window_mask(end - start, k_end - k_start, window, device=q.device)
        blocks.append(
            _combine(
                q[:, start:end],
                k[:, k_start:k_end],
                v[:, k_start:k_end],
                allowed,
                lam,
                lambda_init,
                subln_weight,
                eps,
            )
        )
    return torch.cat(blocks, dim=1)


def diff_attention_decode_ref(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slots: torch.Tensor,
    cache_lens: torch.Tensor,
    lam: torch.Tensor,
    lambda_init: float,
    subln_weight: torch.Tensor,
    eps: float,
) -> torch.Tensor:
    """Decode: one query per sequence over its cached keys (already including the current token).

    Args:
        q: [B, Hq, D].
        k_cache, v_cache: [num_slots, S, Hkv, D]; row `slots[b]` holds sequence b's keys.
        slots: [B] long; cache_lens: [B] long, keys valid in cache rows 0..cache_lens[b]-1. (A SWA ring
            of size S is full once cache_lens >= S; key order does not matter to attention.)
        lam, lambda_init, subln_weight, eps: as in diff_attention_ref.
    Returns:
        [B, Hq * D] in q.dtype. A pad slot (-1) gives a zero row and reads no cache.
    """
    valid = slots >= 0
    if not bool(valid.all()):  # pad rows present: run the real rows only
        out = q.new_zeros(q.shape[0], q.shape[1] * q.shape[2])
        if bool(valid.any()):
            out[valid] = diff_attention_decode_ref(
                q[valid],
                k_cache,
                v_cache,
                slots[valid],
                cache_lens[valid],
                lam,
                lambda_init,
                subln_weight,
                eps,
            )
        return out
    S = min(k_cache.shape[1], int(cache_lens.max()))
    k, v = k_cache[slots, :S], v_cache[slots, :S]
    allowed = torch.arange(S, device=q.device)[None, :] < cache_lens[:, None]  # [B, S]
    # Rows past a sequence's length hold anything (stale keys, other data, NaN). A bad key only poisons
    # its own score, which the mask then replaces with -inf; a bad value would poison the weighted sum
    # (0 * NaN), so values are zeroed there.
    v = v.masked_fill(~allowed[:, :, None, None], 0)
    out = _combine(q[:, None], k, v, allowed[:, None, :], lam, lambda_init, subln_weight, eps)
    return out[:, 0]


try:  # Triton is optional: the CPU build and the reference path never need it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is absent
    triton = None

if triton is not None:
    # The online softmax starts its running max at a finite "-inf": exp(m_old - m_new) then stays 0
    # instead of NaN when a whole key block is masked for some row.
    _NEG_BIG = tl.constexpr(-1.0e30)

    @triton.jit
    def _to(x, dtype, INTERPRETER: tl.constexpr):
        # fp32 x rounded to `dtype` (round to nearest even, as on the GPU and in torch). The interpreter
        # truncates fp32 -> bf16, so there the rounding is done on the bits first (then exact).
        if INTERPRETER and dtype == tl.bfloat16:
            bits = x.to(tl.uint32, bitcast=True)
            bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
            x = bits.to(tl.float32, bitcast=True)
        return x.to(dtype)

    @triton.jit
    def _dot(a, b, INTERPRETER: tl.constexpr):
        # fp32 inputs: exact fp32 products ("ieee", not tf32). The interpreter's tl.dot multiplies bf16
        # bit patterns as integers, so there bf16 operands go up to fp32 first: the same math, as their
        # products are exact in fp32 and the tensor cores accumulate in fp32 too.
        if INTERPRETER:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        return tl.dot(a, b, input_precision="ieee")

    @triton.jit
    def _softmax_start(BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr):
        # (running max, running sum, accumulator) of one half before its first key block or partial
        m = tl.full([BLOCK_R], _NEG_BIG, dtype=tl.float32)
        return m, tl.zeros([BLOCK_R], dtype=tl.float32), tl.zeros([BLOCK_R, 2 * BLOCK_D], dtype=tl.float32)

    @triton.jit
    def _load_pair_block(k_rows, v_rows, n, n_ok, d_ok, c_ok, stride_k_n, stride_k_h, stride_v_n):
        # Key rows n of KV pair j: K[2j] and K[2j+1] [N, BLOCK_D], and [V[2j] | V[2j+1]] [N, 2 * BLOCK_D]
        # (k_rows / v_rows point at row 0 of K[2j] / of the value pair); masked rows read as zero.
        rows = n[:, None].to(tl.int64)
        k_mask = n_ok[:, None] & d_ok[None, :]
        k1 = tl.load(k_rows + rows * stride_k_n, mask=k_mask, other=0.0)
        k2 = tl.load(k_rows + rows * stride_k_n + stride_k_h, mask=k_mask, other=0.0)
        v = tl.load(v_rows + rows * stride_v_n, mask=n_ok[:, None] & c_ok[None, :], other=0.0)
        return k1, k2, v

    @triton.jit
    def _online_block(
        q, k, v, allowed, m, denom, acc, sm_scale, UPCAST: tl.constexpr, INTERPRETER: tl.constexpr
    ):
        # One key block of one half: scores [R, N], running max m and sum denom [R], acc [R, 2 * BLOCK_D].
        # UPCAST: fp32 math (fp32 inputs, or k/v in another dtype than q, e.g. an fp32 pool, bf16 model).
        if UPCAST:
            q = q.to(tl.float32)
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        s = _dot(q, tl.trans(k), INTERPRETER) * sm_scale
        s = tl.where(allowed, s, float("-inf"))
        m_new = tl.maximum(m, tl.max(s, axis=1))
        alpha = tl.exp(m - m_new)
        p = tl.exp(s - m_new[:, None])
        denom = denom * alpha + tl.sum(p, axis=1)
        p = _to(p, v.dtype, INTERPRETER)  # P in V's dtype for the tensor cores, as flash attention does
        acc = acc * alpha[:, None] + _dot(p, v, INTERPRETER)
        return m_new, denom, acc

    @triton.jit
    def _diff_epilogue(
        acc1, l1, acc2, l2, lam_ptr, w_ptr, out_ptrs, store_mask, c_ok, feature, HEAD_DIM: tl.constexpr,
        eps, out_scale, INTERPRETER: tl.constexpr,
    ):  # fmt: skip
        # Rows are q-half heads: acc1/acc2 [R, 2 * BLOCK_D] unnormalized P @ [V1 | V2] of half 1 / 2.
        # Rounds to the output dtype exactly where the reference does (its halves, lam * A2, the
        # difference, the normalized value, the weight product and the final scale are each q.dtype).
        dt = out_ptrs.dtype.element_ty
        a1 = _to(acc1 / tl.where(l1 > 0, l1, 1.0)[:, None], dt, INTERPRETER).to(tl.float32)
        a2 = _to(acc2 / tl.where(l2 > 0, l2, 1.0)[:, None], dt, INTERPRETER).to(tl.float32)
        lam = _to(tl.load(lam_ptr).to(tl.float32), dt, INTERPRETER).to(tl.float32)
        o = _to(a1 - _to(lam * a2, dt, INTERPRETER).to(tl.float32), dt, INTERPRETER).to(tl.float32)
        o = tl.where(c_ok[None, :], o, 0.0)
        mean_sq = tl.sum(o * o, axis=1) / (2 * HEAD_DIM)
        y = _to(o * tl.rsqrt(mean_sq + eps)[:, None], dt, INTERPRETER).to(tl.float32)
        w = tl.load(w_ptr + feature, mask=c_ok, other=0.0).to(tl.float32)
        y = _to(y * w[None, :], dt, INTERPRETER).to(tl.float32) * out_scale
        tl.store(out_ptrs, _to(y, dt, INTERPRETER), mask=store_mask)

    @triton.jit
    def _diff_attn_decode_kernel(
        q_ptr, k_ptr, v_ptr, slots_ptr, lens_ptr, lam_ptr, w_ptr, out_ptr, part_acc_ptr, part_ml_ptr,
        cache_rows, sm_scale, eps, out_scale,
        stride_q_b, stride_q_h, stride_q_d,
        stride_k_slot, stride_k_n, stride_k_h, stride_k_d,
        stride_v_slot, stride_v_n, stride_v_h, stride_v_d,
        stride_out_b, stride_out_c,
        GROUP: tl.constexpr, NUM_SPLITS: tl.constexpr, HEAD_DIM: tl.constexpr, UPCAST: tl.constexpr,
        BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, INTERPRETER: tl.constexpr,
    ):  # fmt: skip
        # Program (sequence b, kv pair, key split). Rows r < GROUP are q-half heads pair*GROUP + r: Q head
        # 2*(pair*GROUP + r) (half 1, with K[2*pair]) and the next one (half 2, with K[2*pair + 1]).
        # Columns of the value tile: c // BLOCK_D picks V[2*pair] or V[2*pair + 1], c % BLOCK_D the dim.
        b = tl.program_id(0)
        pair = tl.program_id(1)
        split = tl.program_id(2)
        rows = tl.arange(0, BLOCK_R)
        row_ok = rows < GROUP
        ds = tl.arange(0, BLOCK_D)
        d_ok = ds < HEAD_DIM
        cs = tl.arange(0, 2 * BLOCK_D)
        c_half = cs // BLOCK_D
        c_d = cs % BLOCK_D
        c_ok = c_d < HEAD_DIM
        ns = tl.arange(0, BLOCK_N)

        slot = tl.load(slots_ptr + b).to(tl.int64)
        # a pad row (-1) has no keys: nothing is read and its output row comes out zero
        n_valid = tl.minimum(tl.load(lens_ptr + b).to(tl.int32), cache_rows)
        n_valid = tl.where(slot >= 0, n_valid, 0)
        # split the keys this sequence actually has (not the cache size) into NUM_SPLITS block runs
        chunk = tl.cdiv(tl.cdiv(n_valid, NUM_SPLITS), BLOCK_N) * BLOCK_N
        start = split * chunk
        end = tl.minimum(start + chunk, n_valid)

        q_heads = 2 * (pair * GROUP + rows)
        q_tile = (
            q_ptr + b.to(tl.int64) * stride_q_b + q_heads[:, None] * stride_q_h + ds[None, :] * stride_q_d
        )
        q_mask = row_ok[:, None] & d_ok[None, :]
        q1 = tl.load(q_tile, mask=q_mask, other=0.0)
        q2 = tl.load(q_tile + stride_q_h, mask=q_mask, other=0.0)

        slot_safe = tl.maximum(slot, 0)
        k_rows = k_ptr + slot_safe * stride_k_slot + (2 * pair) * stride_k_h + ds[None, :] * stride_k_d
        v_rows = (
            v_ptr + slot_safe * stride_v_slot + (2 * pair + c_half[None, :]) * stride_v_h
            + c_d[None, :] * stride_v_d
        )  # fmt: skip

        m1, l1, acc1 = _softmax_start(BLOCK_R, BLOCK_D)
        m2, l2, acc2 = _softmax_start(BLOCK_R, BLOCK_D)
        for n0 in range(start, end, BLOCK_N):
            n = n0 + ns
            n_ok = n < end
            k1, k2, v = _load_pair_block(
                k_rows, v_rows, n, n_ok, d_ok, c_ok, stride_k_n, stride_k_h, stride_v_n
            )
            allowed = n_ok[None, :]
            m1, l1, acc1 = _online_block(q1, k1, v, allowed, m1, l1, acc1, sm_scale, UPCAST, INTERPRETER)
            m2, l2, acc2 = _online_block(q2, k2, v, allowed, m2, l2, acc2, sm_scale, UPCAST, INTERPRETER)

        if NUM_SPLITS == 1:
            feature = c_half * HEAD_DIM + c_d
            out_ptrs = (
                out_ptr + b.to(tl.int64) * stride_out_b
                + ((pair * GROUP + rows)[:, None] * (2 * HEAD_DIM) + feature[None, :]) * stride_out_c
            )  # fmt: skip
            _diff_epilogue(
                acc1, l1, acc2, l2, lam_ptr, w_ptr, out_ptrs, row_ok[:, None] & c_ok[None, :], c_ok, feature,
                HEAD_DIM, eps, out_scale, INTERPRETER,
            )  # fmt: skip
        else:
            # partials of (b, pair, split): acc [2, GROUP, 2 * BLOCK_D], m/l [2, 2, GROUP] (half, m|l, row)
            part = (b * tl.num_programs(1) + pair) * NUM_SPLITS + split
            acc_ptrs = (
                part_acc_ptr
                + part.to(tl.int64) * (2 * GROUP * 2 * BLOCK_D)
                + rows[:, None] * (2 * BLOCK_D)
                + cs[None, :]
            )
            tl.store(acc_ptrs, acc1, mask=row_ok[:, None])
            tl.store(acc_ptrs + GROUP * 2 * BLOCK_D, acc2, mask=row_ok[:, None])
            ml_ptrs = part_ml_ptr + part.to(tl.int64) * (4 * GROUP) + rows
            tl.store(ml_ptrs, m1, mask=row_ok)
            tl.store(ml_ptrs + GROUP, l1, mask=row_ok)
            tl.store(ml_ptrs + 2 * GROUP, m2, mask=row_ok)
            tl.store(ml_ptrs + 3 * GROUP, l2, mask=row_ok)

    @triton.jit
    def _diff_attn_decode_combine_kernel(
        slots_ptr, lam_ptr, w_ptr, out_ptr, part_acc_ptr, part_ml_ptr,
        eps, out_scale,
        stride_out_b, stride_out_c,
        GROUP: tl.constexpr, NUM_SPLITS: tl.constexpr, HEAD_DIM: tl.constexpr,
        BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr, INTERPRETER: tl.constexpr,
    ):  # fmt: skip
        # Program (sequence b, kv pair): merges the NUM_SPLITS partial softmaxes, then the epilogue.
        b = tl.program_id(0)
        pair = tl.program_id(1)
        rows = tl.arange(0, BLOCK_R)
        row_ok = rows < GROUP
        cs = tl.arange(0, 2 * BLOCK_D)
        c_half = cs // BLOCK_D
        c_d = cs % BLOCK_D
        c_ok = c_d < HEAD_DIM
        slot = tl.load(slots_ptr + b).to(tl.int64)
        is_real = (tl.zeros([BLOCK_R], dtype=tl.int64) + slot) >= 0

        m1, l1, acc1 = _softmax_start(BLOCK_R, BLOCK_D)
        m2, l2, acc2 = _softmax_start(BLOCK_R, BLOCK_D)
        first = (b * tl.num_programs(1) + pair) * NUM_SPLITS
        tile_mask = row_ok[:, None] & is_real[:, None]
        for split in range(NUM_SPLITS):
            part = (first + split).to(tl.int64)
            acc_ptrs = (
                part_acc_ptr + part * (2 * GROUP * 2 * BLOCK_D) + rows[:, None] * (2 * BLOCK_D) + cs[None, :]
            )
            ml_ptrs = part_ml_ptr + part * (4 * GROUP) + rows
            live = row_ok & is_real
            pm1 = tl.load(ml_ptrs, mask=live, other=_NEG_BIG)
            pl1 = tl.load(ml_ptrs + GROUP, mask=live, other=0.0)
            pm2 = tl.load(ml_ptrs + 2 * GROUP, mask=live, other=_NEG_BIG)
            pl2 = tl.load(ml_ptrs + 3 * GROUP, mask=live, other=0.0)
            pa1 = tl.load(acc_ptrs, mask=tile_mask, other=0.0)
            pa2 = tl.load(acc_ptrs + GROUP * 2 * BLOCK_D, mask=tile_mask, other=0.0)
            new1 = tl.maximum(m1, pm1)
            old_w1, part_w1 = tl.exp(m1 - new1), tl.exp(pm1 - new1)
            acc1 = acc1 * old_w1[:, None] + pa1 * part_w1[:, None]
            l1 = l1 * old_w1 + pl1 * part_w1
            m1 = new1
            new2 = tl.maximum(m2, pm2)
            old_w2, part_w2 = tl.exp(m2 - new2), tl.exp(pm2 - new2)
            acc2 = acc2 * old_w2[:, None] + pa2 * part_w2[:, None]
            l2 = l2 * old_w2 + pl2 * part_w2
            m2 = new2

        feature = c_half * HEAD_DIM + c_d
        out_ptrs = (
            out_ptr + b.to(tl.int64) * stride_out_b
            + ((pair * GROUP + rows)[:, None] * (2 * HEAD_DIM) + feature[None, :]) * stride_out_c
        )  # fmt: skip
        _diff_epilogue(
            acc1, l1, acc2, l2, lam_ptr, w_ptr, out_ptrs, row_ok[:, None] & c_ok[None, :], c_ok, feature,
            HEAD_DIM, eps, out_scale, INTERPRETER,
        )  # fmt: skip

    @triton.jit
    def _diff_attn_prefill_kernel(
        q_ptr, k_ptr, v_ptr, lam_ptr, w_ptr, out_ptr,
        num_queries, num_keys, window, sm_scale, eps, out_scale,
        stride_q_b, stride_q_t, stride_q_h, stride_q_d,
        stride_k_b, stride_k_t, stride_k_h, stride_k_d,
        stride_v_b, stride_v_t, stride_v_h, stride_v_d,
        stride_out_b, stride_out_t, stride_out_c,
        GROUP: tl.constexpr, HAS_WINDOW: tl.constexpr, QUERIES: tl.constexpr, HEAD_DIM: tl.constexpr,
        UPCAST: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
        INTERPRETER: tl.constexpr,
    ):  # fmt: skip
        # Program (query tile, kv pair, batch). Row r is query t0 + r // GROUP, q-half head
        # pair*GROUP + r % GROUP (rows >= QUERIES * GROUP and queries past the end are padding, clamped
        # onto the tile's last query so that no row is fully masked). Key tiles: only those the tile's
        # causal (and window) mask reaches. Tiles run last-first: the longest key ranges start first.
        tile = tl.num_programs(0) - 1 - tl.program_id(0)
        pair = tl.program_id(1)
        b = tl.program_id(2).to(tl.int64)
        rows = tl.arange(0, BLOCK_R)
        t0 = tile * QUERIES
        t_last = tl.minimum(t0 + QUERIES, num_queries) - 1
        row_t = t0 + rows // GROUP
        row_ok = (rows < QUERIES * GROUP) & (row_t < num_queries)
        row_t = tl.minimum(row_t, t_last)
        row_g = rows % GROUP
        ds = tl.arange(0, BLOCK_D)
        d_ok = ds < HEAD_DIM
        cs = tl.arange(0, 2 * BLOCK_D)
        c_half = cs // BLOCK_D
        c_d = cs % BLOCK_D
        c_ok = c_d < HEAD_DIM
        ns = tl.arange(0, BLOCK_N)

        offset = num_keys - num_queries  # query t sits at key position t + offset
        pos = row_t + offset
        hi = t_last + offset + 1
        lo = 0
        if HAS_WINDOW:
            lo = tl.maximum(t0 + offset - window + 1, 0) // BLOCK_N * BLOCK_N

        q_heads = 2 * (pair * GROUP + row_g)
        q_tile = (
            q_ptr + b * stride_q_b + row_t[:, None].to(tl.int64) * stride_q_t + q_heads[:, None] * stride_q_h
            + ds[None, :] * stride_q_d
        )  # fmt: skip
        q1 = tl.load(q_tile, mask=d_ok[None, :], other=0.0)  # every row is a real (clamped) query
        q2 = tl.load(q_tile + stride_q_h, mask=d_ok[None, :], other=0.0)

        k_rows = k_ptr + b * stride_k_b + (2 * pair) * stride_k_h + ds[None, :] * stride_k_d
        v_rows = (
            v_ptr + b * stride_v_b + (2 * pair + c_half[None, :]) * stride_v_h + c_d[None, :] * stride_v_d
        )  # fmt: skip

        m1, l1, acc1 = _softmax_start(BLOCK_R, BLOCK_D)
        m2, l2, acc2 = _softmax_start(BLOCK_R, BLOCK_D)
        for n0 in range(lo, hi, BLOCK_N):
            n = n0 + ns
            n_ok = n < hi
            k1, k2, v = _load_pair_block(
                k_rows, v_rows, n, n_ok, d_ok, c_ok, stride_k_t, stride_k_h, stride_v_t
            )
            allowed = n[None, :] <= pos[:, None]
            if HAS_WINDOW:
                allowed &= (pos[:, None] - n[None, :]) < window
            m1, l1, acc1 = _online_block(q1, k1, v, allowed, m1, l1, acc1, sm_scale, UPCAST, INTERPRETER)
            m2, l2, acc2 = _online_block(q2, k2, v, allowed, m2, l2, acc2, sm_scale, UPCAST, INTERPRETER)

        feature = c_half * HEAD_DIM + c_d
        out_ptrs = (
            out_ptr + b * stride_out_b + row_t[:, None].to(tl.int64) * stride_out_t
            + ((pair * GROUP + row_g)[:, None] * (2 * HEAD_DIM) + feature[None, :]) * stride_out_c
        )  # fmt: skip
        _diff_epilogue(
            acc1, l1, acc2, l2, lam_ptr, w_ptr, out_ptrs, row_ok[:, None] & c_ok[None, :], c_ok, feature,
            HEAD_DIM, eps, out_scale, INTERPRETER,
        )  # fmt: skip


def _check_pairs(num_heads: int, num_kv_heads: int) -> int:
    """The GQA group size, after checking that heads split into pairs the way the math needs."""
    if num_kv_heads % 2 or num_heads % num_kv_heads:
        raise ValueError(
            f"need an even number of KV heads dividing the Q heads, got {num_heads}/{num_kv_heads}"
        )
    return num_heads // num_kv_heads


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _block_d(head_dim: int) -> int:
    return max(16, triton.next_power_of_2(head_dim))  # tl.dot needs every block dim >= 16 on a GPU


def _decode_config(group: int, head_dim: int, upcast: bool) -> dict[str, int | bool]:
    """Constexprs and launch options of the decode kernels, for the published model (group 2, head_dim
    64) compiled spill-free for sm_90 (see the tests). fp32 math (`upcast`: an fp32 q or a cache dtype
    other than q's) has no bf16 tensor-core dot, so its tiles are smaller."""
    return {
        "BLOCK_R": max(16, triton.next_power_of_2(group)),  # q-half heads per half, padded for tl.dot
        "BLOCK_N": 16 if upcast else 64,
        "BLOCK_D": _block_d(head_dim),
        "HEAD_DIM": head_dim,
        "UPCAST": upcast,
        "INTERPRETER": _interpreting(),
        "num_warps": 8 if upcast else 4,
        "num_stages": 2 if upcast else 3,
    }


def _prefill_config(group: int, head_dim: int, upcast: bool) -> dict[str, int | bool]:
    """Constexprs and launch options of the prefill kernel (as `_decode_config`)."""
    block_r = max(32 if upcast else 64, triton.next_power_of_2(group))  # rows = queries x group heads
    return {
        "BLOCK_R": block_r,
        "QUERIES": block_r // group,
        "BLOCK_N": 16 if upcast else 64,
        "BLOCK_D": _block_d(head_dim),
        "HEAD_DIM": head_dim,
        "UPCAST": upcast,
        "INTERPRETER": _interpreting(),
        "num_warps": 8 if upcast or head_dim > 32 else 4,
        "num_stages": 2,
    }


def _needs_fp32_math(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    return q.dtype == torch.float32 or not (q.dtype == k.dtype == v.dtype)


@functools.cache
def _num_sms(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


_MAX_SPLITS = 32


def _decode_splits(q: torch.Tensor, programs: int, cache_rows: int) -> int:
    """Key splits per (sequence, pair): enough programs for ~2 per SM when the batch alone is too few,
    each split keeping >= 256 keys of a full cache. Static shapes only, so CUDA-graph safe (the kernel
    divides each sequence's actual length, read on the device, among the splits)."""
    if not q.is_cuda:
        return 1
    want = 2 * _num_sms(q.device.index if q.device.index is not None else torch.cuda.current_device())
    if programs >= want:
        return 1
    return max(1, min(_MAX_SPLITS, triton.cdiv(want, programs), triton.cdiv(cache_rows, 256)))


def diff_attention_decode_triton(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slots: torch.Tensor,
    cache_lens: torch.Tensor,
    lam: torch.Tensor,
    lambda_init: float,
    subln_weight: torch.Tensor,
    eps: float,
    *,
    out: torch.Tensor | None = None,
    num_splits: int | None = None,
) -> torch.Tensor:
    """Triton twin of `diff_attention_decode_ref`: one query per sequence, both halves and the GQA group
    of a KV pair in one program, so each cached K/V byte is read once per step.

    Args:
        q: [B, Hq, D] (may be a strided view, e.g. a split of the Wqkv output).
        k_cache, v_cache: [num_slots, S, Hkv, D] (a dtype other than q's runs all the math in fp32,
            e.g. an fp32 state pool under a bf16 model); sequence b's keys are rows
            0..min(cache_lens[b], S) - 1 of slot `slots[b]` (a full SWA ring when cache_lens >= S).
        slots: [B] long (-1 = pad: zero output row, no cache read); cache_lens: [B] long, on the device.
        lam: 0-dim tensor on the device, loaded by the kernel (no host sync: CUDA-graph safe).
        lambda_init, subln_weight [2D], eps: as in diff_attention_ref.
        out: optional [B, Hq * D] buffer in q.dtype (static buffer for CUDA graphs); returned.
        num_splits: key splits per (sequence, pair) (flash-decoding, merged by a second kernel);
            None picks from the batch, the SM count and S.
    Returns:
        [B, Hq * D] in q.dtype.
    """
    batch, num_heads, head_dim = q.shape
    num_kv_heads = k_cache.shape[2]
    group = _check_pairs(num_heads, num_kv_heads)
    if out is None:
        out = torch.empty(batch, num_heads * head_dim, dtype=q.dtype, device=q.device)
    if batch == 0:
        return out
    cfg = _decode_config(group, head_dim, _needs_fp32_math(q, k_cache, v_cache))
    launch = {"num_warps": cfg.pop("num_warps"), "num_stages": cfg.pop("num_stages")}
    pairs = num_kv_heads // 2
    cache_rows = k_cache.shape[1]
    splits = num_splits or _decode_splits(q, batch * pairs, cache_rows)
    if splits > 1:
        part_acc = torch.empty(
            batch * pairs * splits * 2 * group * 2 * cfg["BLOCK_D"], dtype=torch.float32, device=q.device
        )
        part_ml = torch.empty(batch * pairs * splits * 4 * group, dtype=torch.float32, device=q.device)
    else:
        part_acc = part_ml = out  # unused
    scalars = (head_dim**-0.5, float(eps), 1.0 - float(lambda_init))
    _diff_attn_decode_kernel[(batch, pairs, splits)](
        q, k_cache, v_cache, slots, cache_lens, lam, subln_weight, out, part_acc, part_ml,
        cache_rows, *scalars,
        q.stride(0), q.stride(1), q.stride(2),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2), k_cache.stride(3),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2), v_cache.stride(3),
        out.stride(0), out.stride(1),
        GROUP=group, NUM_SPLITS=splits, **cfg, **launch,
        enable_fp_fusion=FP_FUSION,
    )  # fmt: skip
    if splits > 1:
        _diff_attn_decode_combine_kernel[(batch, pairs)](
            slots, lam, subln_weight, out, part_acc, part_ml,
            *scalars[1:],
            out.stride(0), out.stride(1),
            GROUP=group, NUM_SPLITS=splits,
            **{n: cfg[n] for n in ("HEAD_DIM", "BLOCK_R", "BLOCK_D", "INTERPRETER")}, num_warps=4,
            enable_fp_fusion=FP_FUSION,
        )  # fmt: skip
    return out


def diff_attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    lam: torch.Tensor,
    lambda_init: float,
    subln_weight: torch.Tensor,
    eps: float,
    window: int | None,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Triton twin of `diff_attention_ref` (flash-style prefill): tiles of queries x all their heads of
    one KV pair, online softmax over only the key tiles the causal / window mask reaches.

    Args:
        q: [B, Tq, Hq, D]; k, v: [B, Tk, Hkv, D], Tk >= Tq (strided views allowed: they are splits of
            one projection; k/v in another dtype than q's run the math in fp32); queries are the last
            Tq positions (bottom-right causal).
        lam: 0-dim tensor on the device; lambda_init, subln_weight [2D], eps: as in diff_attention_ref.
        window: keys visible including the current one (SWA layers), or None.
        out: optional [B, Tq, Hq * D] buffer in q.dtype; returned.
    Returns:
        [B, Tq, Hq * D] in q.dtype (before out_proj).
    """
    batch, num_queries, num_heads, head_dim = q.shape
    num_keys, num_kv_heads = k.shape[1], k.shape[2]
    group = _check_pairs(num_heads, num_kv_heads)
    if num_keys < num_queries:
        raise ValueError(f"need Tk >= Tq, got Tk={num_keys} < Tq={num_queries}")
    if out is None:
        out = torch.empty(batch, num_queries, num_heads * head_dim, dtype=q.dtype, device=q.device)
    if batch == 0 or num_queries == 0:
        return out
    if num_queries == 1 and (window is None or window >= num_keys):
        # One query over every key (the cross layers of a prefill): the decode kernel, which splits
        # the keys over SMs, with k/v as a cache of B slots holding Tk keys each.
        slots = torch.arange(batch, device=q.device)
        lens = torch.full((batch,), num_keys, dtype=torch.long, device=q.device)
        args = (lam, lambda_init, subln_weight, eps)
        diff_attention_decode_triton(q[:, 0], k, v, slots, lens, *args, out=out[:, 0])
        return out
    cfg = _prefill_config(group, head_dim, _needs_fp32_math(q, k, v))
    launch = {"num_warps": cfg.pop("num_warps"), "num_stages": cfg.pop("num_stages")}
    grid = (triton.cdiv(num_queries, cfg["QUERIES"]), num_kv_heads // 2, batch)
    _diff_attn_prefill_kernel[grid](
        q, k, v, lam, subln_weight, out,
        num_queries, num_keys, window if window is not None else 0,
        head_dim**-0.5, float(eps), 1.0 - float(lambda_init),
        q.stride(0), q.stride(1), q.stride(2), q.stride(3),
        k.stride(0), k.stride(1), k.stride(2), k.stride(3),
        v.stride(0), v.stride(1), v.stride(2), v.stride(3),
        out.stride(0), out.stride(1), out.stride(2),
        GROUP=group, HAS_WINDOW=window is not None, **cfg, **launch,
        enable_fp_fusion=FP_FUSION,
    )  # fmt: skip
    return out


def diff_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    lam: torch.Tensor,
    lambda_init: float,
    subln_weight: torch.Tensor,
    eps: float,
    window: int | None,
    query_chunk: int = 1024,
    *,
    ops: Ops = AUTO,
) -> torch.Tensor:
    """Dispatcher: the Triton kernel for CUDA tensors when triton imports, else the reference
    (`query_chunk` only matters to the reference)."""
    if ops.use_triton("diff_attention", q, triton is not None):
        return diff_attention_triton(q, k, v, lam, lambda_init, subln_weight, eps, window)
    return diff_attention_ref(q, k, v, lam, lambda_init, subln_weight, eps, window, query_chunk)


def diff_attention_decode(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    slots: torch.Tensor,
    cache_lens: torch.Tensor,
    lam: torch.Tensor,
    lambda_init: float,
    subln_weight: torch.Tensor,
    eps: float,
    *,
    ops: Ops = AUTO,
) -> torch.Tensor:
    """Dispatcher: the Triton kernel for CUDA tensors when triton imports, else the reference."""
    use = ops.use_triton("diff_attention_decode", q, triton is not None)
    op = diff_attention_decode_triton if use else diff_attention_decode_ref
    return op(q, k_cache, v_cache, slots, cache_lens, lam, lambda_init, subln_weight, eps)
