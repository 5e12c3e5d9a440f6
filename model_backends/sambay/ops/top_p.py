"""Sort-free top-p (nucleus) sampling of one token per row: a Triton kernel and its PyTorch oracle.

The semantics (both implementations) are stated once, on `top_p_sample_ref`. The kernel never sorts
the vocabulary: it finds the nucleus threshold by bisection on the fp32 bit pattern of the
probabilities (positive floats order like their int32 bits), reading only the blocks of the row that
can change the answer; see `_top_p_kernel` for the passes.
"""

from __future__ import annotations

import torch

from model_backends.sambay.ops.dispatch import AUTO, FP_FUSION, Ops

# top_p <= 0 acts as this (an infinitesimal nucleus: the most probable token(s) only)
_MIN_TOP_P = 1e-30
_LOG2E = 1.4426950408889634


def exp2_scale(temperature: torch.Tensor) -> torch.Tensor:
    """fp32 [B]: log2(e) / temperature (rounded once, from float64), 0 where temperature <= 0 (greedy).
    Computed by tensor ops on temperature's device, for the oracle and the kernel alike."""
    t = temperature.double()
    return torch.where(t > 0, _LOG2E / t, 0.0).float()


def unnormalised_probs(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """fp32 [B, V] weights w, proportional to softmax(logits / temperature), exactly as the kernel
    forms them: w = 2^(x*s - max*s) with s = exp2_scale(temperature) and x*s - max*s rounded once
    (an FMA). The largest weight is 1; -inf logits get 0; greedy rows get temperature 1's weights."""
    x = logits.float()
    scale = exp2_scale(temperature).unsqueeze(-1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale) * _LOG2E)
    shift = x.max(dim=-1, keepdim=True).values * scale  # fp32 product, like the kernel's
    return torch.exp2((x.double() * scale.double() - shift.double()).float())


def top_p_sample_ref(
    logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """One token per row by temperature + tie-inclusive top-p + inverse CDF in vocabulary order.

    Args:
        logits: [B, V] any float dtype (-inf marks a masked token; a row needs one finite logit).
        temperature: [B] fp32; 0 (or less) means greedy.
        top_p: [B] fp32.
        u: [B] float64 uniforms in [0, 1), one per row (sampling.uniform of the row's seed and step).
    Returns:
        int64 [B] token ids.

    Semantics, per row:
      * temperature <= 0: argmax of the logits, the lowest id on ties.
      * probs p = softmax(logits / temperature), formed in fp32 as the weights w of
        `unnormalised_probs` (p = w / sum w); every mass below is a sum of weights taken as a
        fraction of the row's total, so no normalisation rounding enters.
      * Nucleus, tie-inclusive and order-free: keep token i iff the mass of the tokens STRICTLY more
        probable than i is < top_p. Equivalently keep = {i : p_i >= t*} with t* the largest x such
        that sum_{p_j >= x} p_j >= top_p. Tokens of equal probability are all kept or all dropped, and
        the most probable token(s) are always kept; top_p >= 1 keeps every token, top_p <= 0 acts as
        an infinitesimal top_p (the most probable token(s) only). Zero-probability tokens (masked,
        or underflowed) are never drawn.
      * Draw: target = u * kept_mass; the token is the first index, in vocabulary order, whose running
        kept mass exceeds target; never past the last kept token of nonzero probability.
    This oracle sums the fp32 weights in float64 after a sort. The kernel forms the same weights (its
    exp2 may differ by an ulp or two) and sums them in fp32 lanes and float64 in another order, so
    the two can disagree only where a mass lies within float rounding (~1e-7 relative) of top_p * total
    or of the target (measured in tests/model_backends/sambay/test_ops_top_p.py).
    """
    x = logits.float()
    greedy = torch.argmax(x, dim=-1)  # first index of the maximum
    w = unnormalised_probs(x, temperature)
    w64 = w.double()
    total = w64.sum(dim=-1, keepdim=True)
    # mass strictly above each w_i: suffix sums of the ascending sort, entered after w_i's last copy
    ascending, _ = torch.sort(w, dim=-1)
    suffix = torch.flip(torch.cumsum(torch.flip(ascending.double(), [-1]), dim=-1), [-1])
    suffix = torch.cat([suffix, suffix.new_zeros(suffix.shape[0], 1)], dim=-1)
    mass_above = suffix.gather(-1, torch.searchsorted(ascending, w, right=True))
    tp = top_p.double().unsqueeze(-1)
    keep = ((mass_above < tp.clamp(min=_MIN_TOP_P) * total) | (tp >= 1.0)) & (w > 0)
    kept = torch.where(keep, w64, 0.0)
    cdf = torch.cumsum(kept, dim=-1)
    target = u.double() * cdf[:, -1]
    token = torch.searchsorted(cdf, target.unsqueeze(-1), right=True).squeeze(-1)
    last_kept = kept.shape[-1] - 1 - torch.argmax(torch.flip(keep, [-1]).int(), dim=-1)
    token = torch.minimum(token, last_kept)
    return torch.where(temperature > 0, token, greedy)


try:  # Triton is optional: the CPU build and the reference path never need it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is absent
    triton = None

if triton is not None:

    @triton.jit
    def _unnormalised(x, c, m):
        # unnormalised_probs: 2^(x*c - m), x*c - m rounded once (an FMA, in the interpreter too); one
        # expression everywhere, so every pass (and pass B's block minima / maxima) sees the same bits
        return tl.exp2(tl.fma(x, c, -m))

    @triton.jit
    def _block_weights(row_ptr, V, b, c, m, BLOCK: tl.constexpr):
        """(offsets, unnormalised probs) of block b of the row; past V the weights are 0."""
        offs = b * BLOCK + tl.arange(0, BLOCK)
        x = tl.load(row_ptr + offs, mask=offs < V, other=float("-inf")).to(tl.float32)
        return offs, _unnormalised(x, c, m)

    @triton.jit
    def _accumulate_split(e, thr, acc_s, acc_c, acc_min, acc_max):
        """Per-lane running sum, count and smallest of the weights >= thr, and largest of those below."""
        ge = e >= thr
        acc_s += tl.where(ge, e, 0.0)
        acc_c += ge.to(tl.int32)
        acc_min = tl.minimum(acc_min, tl.where(ge, e, float("inf")))
        acc_max = tl.maximum(acc_max, tl.where(ge, -1.0, e))
        return acc_s, acc_c, acc_min, acc_max

    @triton.jit
    def _mass_at(
        row_ptr, V, c, m, thr, bsum, bmin, bmax, bcnt, nb, dense_min,
        BLOCK: tl.constexpr, NB_P2: tl.constexpr,
    ):  # fmt: skip
        """(mass, count, smallest value, largest value below) of {e >= thr}, e the unnormalised probs.

        Blocks with every value >= thr (block min) add their pass-B sum and count, blocks with every
        value < thr add nothing; only the blocks straddling thr are read: one by one when they are
        few ("sparse"), else by one streaming pass over the row ("dense", no per-block reductions).
        """
        arb = tl.arange(0, NB_P2)
        above = bmin >= thr
        straddle = (bmin < thr) & (bmax >= thr)
        n_straddle = tl.sum(straddle.to(tl.int32), 0)
        acc_s = tl.zeros([BLOCK], dtype=tl.float32)
        acc_c = tl.zeros([BLOCK], dtype=tl.int32)
        acc_min = tl.full([BLOCK], float("inf"), dtype=tl.float32)
        acc_max = tl.full([BLOCK], -1.0, dtype=tl.float32)
        if n_straddle >= dense_min:
            for b in range(0, nb):
                offs, e = _block_weights(row_ptr, V, b, c, m, BLOCK)
                acc_s, acc_c, acc_min, acc_max = _accumulate_split(e, thr, acc_s, acc_c, acc_min, acc_max)
            mass = tl.sum(acc_s.to(tl.float64), 0)
            count = tl.sum(acc_c, 0)
            low = tl.min(acc_min, 0)
            below = tl.max(acc_max, 0)
        else:
            todo = straddle
            for _ in range(0, n_straddle):
                b = tl.min(tl.where(todo, arb, NB_P2), 0)
                todo = todo & (arb != b)
                offs, e = _block_weights(row_ptr, V, b, c, m, BLOCK)
                acc_s, acc_c, acc_min, acc_max = _accumulate_split(e, thr, acc_s, acc_c, acc_min, acc_max)
            mass = tl.sum(acc_s.to(tl.float64), 0) + tl.sum(tl.where(above, bsum, 0.0).to(tl.float64), 0)
            count = tl.sum(acc_c, 0) + tl.sum(tl.where(above, bcnt, 0), 0)
            low = tl.minimum(tl.min(acc_min, 0), tl.min(tl.where(above, bmin, float("inf")), 0))
            below = tl.maximum(tl.max(acc_max, 0), tl.max(tl.where(bmax < thr, bmax, -1.0), 0))
        return mass, count, low, below

    @triton.jit
    def _block_masses(
        row_ptr, V, c, m, thr, bsum, bmin, bmax, nb, dense_min,
        BLOCK: tl.constexpr, NB_P2: tl.constexpr,
    ):  # fmt: skip
        """[NB_P2] fp32: per block, the mass of {e >= thr} (pass-B sums where the whole block is kept)."""
        arb = tl.arange(0, NB_P2)
        straddle = (bmin < thr) & (bmax >= thr)
        n_straddle = tl.sum(straddle.to(tl.int32), 0)
        masses = tl.where(bmin >= thr, bsum, 0.0)
        if n_straddle >= dense_min:
            for b in range(0, nb):
                offs, e = _block_weights(row_ptr, V, b, c, m, BLOCK)
                masses = tl.where(arb == b, tl.sum(tl.where(e >= thr, e, 0.0), 0), masses)
        else:
            todo = straddle
            for _ in range(0, n_straddle):
                b = tl.min(tl.where(todo, arb, NB_P2), 0)
                todo = todo & (arb != b)
                offs, e = _block_weights(row_ptr, V, b, c, m, BLOCK)
                masses = tl.where(arb == b, tl.sum(tl.where(e >= thr, e, 0.0), 0), masses)
        return masses

    @triton.jit
    def _top_p_kernel(
        logits_ptr, scale_ptr, top_p_ptr, u_ptr, out_ptr, cand_ptr,
        V, stride_row, dense_min,
        BLOCK: tl.constexpr, NB_P2: tl.constexpr, CAND: tl.constexpr,
    ):  # fmt: skip
        # One program per row; e = 2^(x*c - max*c), c = log2(e) / T, are the unnormalised
        # probabilities (p = e / sum e), so masses are compared with top_p * sum e. Passes over the row:
        #   A  max + argmax (one streaming read, no per-block reductions);
        #   B  per BLOCK: sum, min and max of e into [NB_P2] register vectors (one read);
        #   1  bisection on the int32 bits of the threshold, bracket [lo, hi) with mass(lo) >= target
        #      > mass(hi); each probe reads only the blocks straddling it (see _mass_at) and snaps lo /
        #      hi to the nearest actual values, until the bracket holds one value or <= CAND values;
        #   2  those CAND candidates are copied (in order) to a per-row scratch, and the bisection ends
        #      on them in registers, no further reads;
        #   D  per-block kept masses (again only straddling blocks are read), then one block for the
        #      in-block inverse CDF.
        # So a peaked row costs ~2 reads plus a few blocks; a flat row ~2 + (~10 probes) + 2 reads.
        row = tl.program_id(0)
        row_ptr = logits_ptr + row.to(tl.int64) * stride_row
        ar = tl.arange(0, BLOCK)
        nb = tl.cdiv(V, BLOCK)

        # A: max and first argmax (each lane sees increasing ids; strict > keeps its first maximum)
        run_max = tl.full([BLOCK], float("-inf"), dtype=tl.float32)
        run_idx = tl.zeros([BLOCK], dtype=tl.int32)
        for b in range(0, nb):
            offs = b * BLOCK + ar
            x = tl.load(row_ptr + offs, mask=offs < V, other=float("-inf")).to(tl.float32)
            better = x > run_max
            run_max = tl.where(better, x, run_max)
            run_idx = tl.where(better, offs, run_idx)
        x_max = tl.max(run_max, 0)
        token = tl.min(tl.where(run_max == x_max, run_idx, V), 0)

        c = tl.load(scale_ptr + row)  # exp2_scale: 0 for greedy rows
        if c > 0:
            m = x_max * c
            # B: block statistics; blocks past the row: sum 0, min +inf, max -1 (never read)
            arb = tl.arange(0, NB_P2)
            bsum = tl.zeros([NB_P2], dtype=tl.float32)
            bmin = tl.full([NB_P2], float("inf"), dtype=tl.float32)
            bmax = tl.full([NB_P2], -1.0, dtype=tl.float32)
            for b in range(0, nb):
                offs = b * BLOCK + ar
                valid = offs < V
                x = tl.load(row_ptr + offs, mask=valid, other=float("-inf")).to(tl.float32)
                e = _unnormalised(x, c, m)
                here = arb == b
                bsum = tl.where(here, tl.sum(e, 0), bsum)
                bmin = tl.where(here, tl.min(tl.where(valid, e, float("inf")), 0), bmin)
                bmax = tl.where(here, tl.max(e, 0), bmax)
            bcnt = tl.minimum(tl.maximum(V - arb * BLOCK, 0), BLOCK)
            total = tl.sum(bsum.to(tl.float64), 0)
            top_p = tl.load(top_p_ptr + row).to(tl.float64)
            target = tl.maximum(top_p, 1e-30) * total

            # bracket: mass(lo) = total (lo <= every positive e), mass(hi) = 0
            lo = tl.maximum(tl.min(bmin, 0).to(tl.int32, bitcast=True), 1)
            hi = tl.max(bmax, 0).to(tl.int32, bitcast=True) + 1
            hi = tl.where(top_p >= 1.0, lo + 1, hi)  # keep everything: no search
            mass_hi = total * 0.0
            count_lo = V
            count_hi = V * 0
            # 1: probes over the row
            while (hi - lo > 1) & (count_lo - count_hi > CAND):
                mid = lo + (hi - lo) // 2
                thr = mid.to(tl.float32, bitcast=True)
                mass, count, low, below = _mass_at(
                    row_ptr, V, c, m, thr, bsum, bmin, bmax, bcnt, nb, dense_min, BLOCK, NB_P2
                )
                ok = mass >= target
                # snap: no value lies in [mid, low) nor in (below, mid), so the masses carry over
                new_lo = tl.minimum(tl.maximum(low.to(tl.int32, bitcast=True), mid), hi - 1)
                new_hi = tl.maximum(tl.minimum(below.to(tl.int32, bitcast=True) + 1, mid), lo + 1)
                lo = tl.where(ok, new_lo, lo)
                count_lo = tl.where(ok, count, count_lo)
                hi = tl.where(ok, hi, new_hi)
                mass_hi = tl.where(ok, mass_hi, mass)
                count_hi = tl.where(ok, count_hi, count)
            # 2: the <= CAND values in [lo, hi), compacted in order, then bisection in registers
            if hi - lo > 1:
                lo_f = lo.to(tl.float32, bitcast=True)
                hi_f = hi.to(tl.float32, bitcast=True)
                cand_row = cand_ptr + row.to(tl.int64) * CAND
                todo = (bmax >= lo_f) & (bmin < hi_f)
                n_todo = tl.sum(todo.to(tl.int32), 0)
                n_cand = V * 0
                for _ in range(0, n_todo):
                    b = tl.min(tl.where(todo, arb, NB_P2), 0)
                    todo = todo & (arb != b)
                    offs, e = _block_weights(row_ptr, V, b, c, m, BLOCK)
                    sel = (e >= lo_f) & (e < hi_f)
                    pos = n_cand + tl.cumsum(sel.to(tl.int32), 0) - 1
                    tl.store(cand_row + pos, e, mask=sel & (pos < CAND))
                    n_cand += tl.sum(sel.to(tl.int32), 0)
                tl.debug_barrier()  # the scratch was written by other threads of this program
                ac = tl.arange(0, CAND)
                cand = tl.load(cand_row + ac, mask=ac < n_cand, other=0.0)
                while hi - lo > 1:
                    mid = lo + (hi - lo) // 2
                    thr = mid.to(tl.float32, bitcast=True)
                    ge = cand >= thr
                    mass = mass_hi + tl.sum(tl.where(ge, cand, 0.0).to(tl.float64), 0)
                    low = tl.min(tl.where(ge, cand, float("inf")), 0)
                    below = tl.max(tl.where(ge, -1.0, cand), 0)
                    ok = mass >= target
                    new_lo = tl.minimum(tl.maximum(low.to(tl.int32, bitcast=True), mid), hi - 1)
                    new_hi = tl.maximum(tl.minimum(below.to(tl.int32, bitcast=True) + 1, mid), lo + 1)
                    lo = tl.where(ok, new_lo, lo)
                    hi = tl.where(ok, hi, new_hi)
            t_star = lo.to(tl.float32, bitcast=True)  # keep = {e >= t_star}

            # D: which block holds the target, then the first kept id past it inside that block
            kept = _block_masses(row_ptr, V, c, m, t_star, bsum, bmin, bmax, nb, dense_min, BLOCK, NB_P2)
            prefix = tl.cumsum(kept.to(tl.float64), 0)
            u = tl.load(u_ptr + row).to(tl.float64)
            goal = u * tl.max(prefix, 0)
            b_hit = tl.min(tl.where(prefix > goal, arb, NB_P2), 0)
            missed = b_hit >= NB_P2  # u * mass rounded up to the mass: take the last kept token
            b_hit = tl.where(missed, tl.max(tl.where(kept > 0, arb, 0), 0), b_hit)
            goal = tl.where(missed, float("inf"), goal)
            before = tl.max(tl.where(arb < b_hit, prefix, 0.0), 0)
            offs, e = _block_weights(row_ptr, V, b_hit, c, m, BLOCK)
            e_kept = tl.where(e >= t_star, e, 0.0)
            running = before + tl.cumsum(e_kept.to(tl.float64), 0)
            first = tl.min(tl.where(running > goal, offs, V), 0)
            last = tl.max(tl.where(e_kept > 0, offs, -1), 0)
            drawn = tl.where(first < V, first, last)
            token = tl.where(drawn >= 0, drawn, token)
        tl.store(out_ptr + row, token.to(tl.int64))


MAX_BLOCK = 4096  # 49 blocks for the published vocabulary (200,064)
CAND = 2048  # candidate tile of phase 2 (registers), and the per-row fp32 scratch it is copied through


def launch_config(vocab: int, block: int | None = None) -> dict[str, int]:
    """The kernel's constexprs and warps for a vocabulary size (tests compile exactly these)."""
    block = block or min(MAX_BLOCK, triton.next_power_of_2(vocab))
    num_blocks = triton.cdiv(vocab, block)
    return {
        "BLOCK": block,
        "NB_P2": triton.next_power_of_2(num_blocks),
        # 8 warps, not 16: 16 caps a thread at 128 registers and Triton 3.6 (the device image) then
        # spills; one program per row, so occupancy is not what limits this kernel
        "num_warps": max(1, min(8, block // 512)),
    }


def top_p_sample_triton(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    top_p: torch.Tensor,
    u: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
    block: int | None = None,
    cand: int = CAND,
    dense_min: int | None = None,
) -> torch.Tensor:
    """Triton twin of `top_p_sample_ref` (same arguments and semantics), one program per row.

    No sort. Reads of the row (BLOCK = 4096, 49 blocks at V = 200,064): 2 full reads (max; block
    sums / minima / maxima of the unnormalised probabilities); bisection probes until <= 2048
    candidate values remain, each reading only the blocks holding values on both sides of the probe
    (flat rows: ~10 probes of about the whole row; peaked, LM-like rows: a few probes of a few
    blocks); at most one pass copying the candidates to a scratch (the bisection ends on them in
    registers); one pass of the blocks straddling the threshold for the per-block kept mass; one
    block for the draw. Greedy rows stop after the first read.

    `out` (int64 [B]) lets a caller supply a static buffer (CUDA graphs); it is returned. Nothing
    syncs the host. `block`, `cand` and `dense_min` (block size, candidate-tile size, and the number
    of straddling blocks from which a probe streams the whole row instead of reading them one by
    one) are for tests; the defaults suit the published vocabulary.
    """
    batch, vocab = logits.shape
    if out is None:
        out = torch.empty(batch, dtype=torch.int64, device=logits.device)
    if batch == 0:
        return out
    if logits.stride(-1) != 1:
        logits = logits.contiguous()
    config = launch_config(vocab, block)
    if dense_min is None:  # streaming the row beats block-by-block reads from ~1/4 of the blocks
        dense_min = max(1, triton.cdiv(vocab, config["BLOCK"]) // 4)
    scratch = torch.empty(batch, cand, dtype=torch.float32, device=logits.device)
    _top_p_kernel[(batch,)](
        logits, exp2_scale(temperature), top_p.float().contiguous(), u.double().contiguous(),
        out, scratch,
        vocab, logits.stride(0), dense_min,
        CAND=cand, **config,
        enable_fp_fusion=FP_FUSION,
    )  # fmt: skip
    return out


def top_p_sample(
    logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, u: torch.Tensor, *, ops: Ops = AUTO
) -> torch.Tensor:
    """Dispatcher: the Triton kernel for CUDA tensors when triton imports, else the reference."""
    if ops.use_triton("top_p_sample", logits, triton is not None):
        return top_p_sample_triton(logits, temperature, top_p, u)
    return top_p_sample_ref(logits, temperature, top_p, u)
