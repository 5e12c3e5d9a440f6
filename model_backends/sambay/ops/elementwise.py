"""Fused elementwise ops of the SambaY blocks: SwiGLU, silu(a) * b, and residual add + LayerNorm.

Each `op_ref` is the expression layers.py evaluates today, so the refs are bit-for-bit what the model
computes now. The Triton twins do the math in fp32 and reproduce the eager rounding order:

* silu_mul / swiglu: PyTorch rounds silu(a) to a's dtype (F.silu returns a's dtype), then rounds the
  product to the promoted dtype: out = round(round(silu(a)) * b). The kernels round the same two
  times (for bf16 inputs the product of two bf16 values is exact in fp32, so only those two roundings
  happen); only silu's fp32 value can differ (exp implementation), by ~1 fp32 ulp before rounding.
* add_layernorm: sum = residual + x rounded to the promoted dtype (as `residual + x`), then LayerNorm
  of sum.to(weight.dtype) with mean / biased variance / affine in fp32, rounded to weight.dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model_backends.sambay.ops.dispatch import AUTO, FP_FUSION, Ops


def silu_mul_ref(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """silu(a) * b, same shapes; the GMU's `F.silu(in_proj(u)) * memory`, and the memory Mamba's
    gate `y * F.silu(z)` as silu_mul(z, y) (IEEE products commute). Returns the promoted dtype."""
    return F.silu(a) * b


def swiglu_ref(gate_up: torch.Tensor) -> torch.Tensor:
    """[..., 2I] -> [..., I]: up * silu(gate), gate the FIRST half (the MLP's fc1 output)."""
    gate, up = gate_up.chunk(2, dim=-1)
    return up * F.silu(gate)


def add_layernorm_ref(
    residual: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum, normed): sum = residual + x (promoted dtype), normed = LayerNorm(sum.to(weight.dtype)).

    DecoderLayer.finish's `h = residual + mixed; post_attention_layernorm(h.to(weight.dtype))`.
    residual, x: [..., H]; weight, bias: [H]. normed is in weight.dtype.
    """
    total = residual + x
    return total, F.layer_norm(total.to(weight.dtype), (weight.shape[-1],), weight, bias, eps)


try:  # Triton is optional: the CPU build and the reference path never need it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is absent
    triton = None

if triton is not None:

    @triton.jit
    def _rounded(x, dtype: tl.constexpr):
        """fp32 `x` rounded to nearest-even into `dtype`. bf16 is rounded by hand on the int32 bits
        (the GPU's cvt.rn does the same; the interpreter's own fp32 -> bf16 cast truncates)."""
        if dtype == tl.bfloat16:
            bits = x.to(tl.uint32, bitcast=True)
            bits = tl.where(x != x, 0x7FC00000, bits + 0x7FFF + ((bits >> 16) & 1))  # NaN stays NaN
            return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
        else:
            return x.to(dtype)

    @triton.jit
    def _silu_mul_kernel(
        a_ptr, b_ptr, out_ptr,
        n_cols, stride_a, stride_b, stride_out,
        BLOCK: tl.constexpr,
    ):  # fmt: skip
        # grid (rows, column blocks); rows are strided (halves of one fc1 output), columns contiguous
        row = tl.program_id(0).to(tl.int64)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = cols < n_cols
        a = tl.load(a_ptr + row * stride_a + cols, mask=mask, other=0.0).to(tl.float32)
        b = tl.load(b_ptr + row * stride_b + cols, mask=mask, other=0.0).to(tl.float32)
        silu = _rounded(a / (1.0 + tl.exp(-a)), a_ptr.dtype.element_ty).to(tl.float32)  # as F.silu rounds
        out = _rounded(silu * b, out_ptr.dtype.element_ty)
        tl.store(out_ptr + row * stride_out + cols, out, mask=mask)

    @triton.jit
    def _add_layernorm_kernel(
        res_ptr, x_ptr, w_ptr, bias_ptr, sum_ptr, out_ptr,
        n_cols, stride_res, stride_x, stride_sum, stride_out, eps,
        HAS_BIAS: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
        # one program per row, the whole row in registers
        row = tl.program_id(0).to(tl.int64)
        cols = tl.arange(0, BLOCK)
        mask = cols < n_cols
        r = tl.load(res_ptr + row * stride_res + cols, mask=mask, other=0.0).to(tl.float32)
        x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
        total = _rounded(r + x, sum_ptr.dtype.element_ty)
        tl.store(sum_ptr + row * stride_sum + cols, total, mask=mask)
        v = _rounded(total.to(tl.float32), w_ptr.dtype.element_ty).to(tl.float32)
        mean = tl.sum(v, 0) / n_cols
        d = tl.where(mask, v - mean, 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(d * d, 0) / n_cols + eps)
        y = d * rstd * tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_BIAS:
            y += tl.load(bias_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(out_ptr + row * stride_out + cols, _rounded(y, out_ptr.dtype.element_ty), mask=mask)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """[..., D] as [N, D] with unit column stride (a view whenever the leading dims collapse)."""
    t = t.reshape(-1, t.shape[-1])
    return t if t.stride(-1) == 1 else t.contiguous()


def silu_mul_config(n_cols: int) -> dict[str, int]:
    """BLOCK (columns per program; 10 programs per row of the published MLP, I = 10240) and warps."""
    block = min(1024, triton.next_power_of_2(n_cols))
    return {"BLOCK": block, "num_warps": max(1, min(4, block // 256))}


def add_layernorm_config(width: int) -> dict[str, int]:
    """BLOCK (the whole row, padded to a power of two: 4096 for hidden 2560) and warps."""
    block = triton.next_power_of_2(width)
    return {"BLOCK": block, "num_warps": max(1, min(16, block // 256))}


def _silu_mul_launch(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    n_rows, n_cols = a.shape
    if n_rows == 0 or n_cols == 0:
        return
    config = silu_mul_config(n_cols)
    _silu_mul_kernel[(n_rows, triton.cdiv(n_cols, config["BLOCK"]))](
        a, b, out, n_cols, a.stride(0), b.stride(0), out.stride(0), **config, enable_fp_fusion=FP_FUSION
    )


def silu_mul_triton(a: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """Triton twin of `silu_mul_ref` (a and b of one shape; strided leading dims are fine).
    `out` (a's shape, the promoted dtype, contiguous) lets a caller supply a static buffer."""
    if a.shape != b.shape:
        raise ValueError(f"silu_mul: shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if out is None:
        out = torch.empty(a.shape, dtype=torch.promote_types(a.dtype, b.dtype), device=a.device)
    _silu_mul_launch(_rows(a), _rows(b), out.view(-1, a.shape[-1]))
    return out


def swiglu_triton(gate_up: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """Triton twin of `swiglu_ref`: [..., 2I] -> [..., I] in gate_up.dtype; `out` as in silu_mul."""
    width = gate_up.shape[-1] // 2
    if out is None:
        out = torch.empty(*gate_up.shape[:-1], width, dtype=gate_up.dtype, device=gate_up.device)
    rows = _rows(gate_up)
    _silu_mul_launch(rows[:, :width], rows[:, width:], out.view(-1, width))
    return out


ADD_LAYERNORM_MAX_WIDTH = 16384  # one row per program, held whole in registers


def add_layernorm_triton(
    residual: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    eps: float,
    *,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton twin of `add_layernorm_ref`. `out` = (sum, normed) static buffers (contiguous, the
    shapes and dtypes the ref returns) lets a caller avoid allocation; they are returned."""
    if residual.shape != x.shape:
        raise ValueError(f"add_layernorm: shapes differ: {tuple(residual.shape)} vs {tuple(x.shape)}")
    width = x.shape[-1]
    if width > ADD_LAYERNORM_MAX_WIDTH:
        raise ValueError(f"add_layernorm: rows of {width} exceed {ADD_LAYERNORM_MAX_WIDTH}")
    if out is None:
        total = torch.empty(x.shape, dtype=torch.promote_types(residual.dtype, x.dtype), device=x.device)
        normed = torch.empty(x.shape, dtype=weight.dtype, device=x.device)
    else:
        total, normed = out
    res_rows, x_rows = _rows(residual), _rows(x)
    total_rows, normed_rows = total.view(-1, width), normed.view(-1, width)
    n_rows = res_rows.shape[0]
    if n_rows:
        _add_layernorm_kernel[(n_rows,)](
            res_rows, x_rows, weight, bias if bias is not None else weight, total_rows, normed_rows,
            width, res_rows.stride(0), x_rows.stride(0), total_rows.stride(0), normed_rows.stride(0), eps,
            HAS_BIAS=bias is not None, **add_layernorm_config(width),
            enable_fp_fusion=FP_FUSION,
        )  # fmt: skip
    return total, normed


def silu_mul(a: torch.Tensor, b: torch.Tensor, *, ops: Ops = AUTO) -> torch.Tensor:
    """Dispatcher: the Triton kernel for CUDA tensors when triton imports, else the reference."""
    if ops.use_triton("silu_mul", a, triton is not None):
        return silu_mul_triton(a, b)
    return silu_mul_ref(a, b)


def swiglu(gate_up: torch.Tensor, *, ops: Ops = AUTO) -> torch.Tensor:
    """Dispatcher: the Triton kernel for CUDA tensors when triton imports, else the reference."""
    if ops.use_triton("swiglu", gate_up, triton is not None):
        return swiglu_triton(gate_up)
    return swiglu_ref(gate_up)


def add_layernorm(
    residual: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    eps: float,
    *,
    ops: Ops = AUTO,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatcher: the Triton kernel for CUDA tensors when triton imports, else the reference."""
    if ops.use_triton("add_layernorm", x, triton is not None):
        return add_layernorm_triton(residual, x, weight, bias, eps)
    return add_layernorm_ref(residual, x, weight, bias, eps)
