"""Triton prefill kernels (causal_conv1d, selective_scan) against their `_ref` twins.

On CPU the kernels run under the Triton interpreter. TRITON_INTERPRET must be set before triton is
first imported, and other tests import it without, so the comparisons run in a child process: this
file doubles as that worker (`python test_ops_triton_prefill.py` prints one JSON object of error
figures). The interpreter walks the scan one time step at a time in Python, so the tiny cases keep
T <= 40; the real sizes run on a GPU only.
"""

from __future__ import annotations

import logging

import pytest
import torch

from tests.model_backends.sambay.interpreter import HAS_TRITON, worker_fixture, worker_main

# name -> (batch, channels, d_state, conv width, seqlen, with z gate, with conv bias, layer layout)
# The conv kernel tiles 64 channels x 32 steps and the scan kernel 128 channels, so "odd_blocks" has
# partial channel blocks in both and a partial time block; "layer layout" passes the strided views
# Mamba.forward builds (channel stride 1), else contiguous [B, C, T] / [B, N, T] tensors.
TINY_CASES = {
    "t1_two_seqs": (2, 37, 5, 4, 1, True, True, True),
    "t_below_width": (1, 9, 16, 4, 3, False, True, True),
    "odd_blocks": (2, 150, 16, 3, 37, True, False, True),
    "d_state1_width2": (1, 40, 1, 2, 20, True, True, True),
    "contiguous": (2, 24, 5, 4, 33, False, True, False),
}
REAL_CASES = {
    "real_b1": (1, 5120, 16, 4, 2048, True, True, True),
    "real_b2_memory_layer": (2, 5120, 16, 4, 2048, False, True, True),  # layer 16: the scan runs ungated
}
SCAN_ARGS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")  # selective_scan's positional order
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# fp32: kernel and ref differ only by fp32 op order (and exp/log implementations). bf16: inputs and
# outputs bf16, the arithmetic and the scan state fp32, so one bf16 rounding of an output may differ.
# Errors are |kernel - ref| / (1 + |ref|). The conv state is a copy of raw inputs: it must be exact.
TOLERANCE = {"fp32": 1e-5, "bf16": 1e-2}


def _scaled_error(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.float(), want.float()
    return float(((got - want).abs() / (1 + want.abs())).max())


def _inputs(case: tuple, dtype: torch.dtype, device: str, seed: int) -> dict:
    """Random (never zero) inputs of both prefill ops, laid out as the case says."""
    batch, channels, d_state, width, seqlen, with_z, with_bias, layer_layout = case
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale + shift).to(device)

    def channels_view(scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:  # [B, C, T]
        if layer_layout:  # a transpose of a [B, T, C] tensor, like the conv output the scan receives
            return rand(batch, seqlen, channels, scale=scale, shift=shift).to(dtype).transpose(1, 2)
        return rand(batch, channels, seqlen, scale=scale, shift=shift).to(dtype)

    if layer_layout:  # x, z: halves of in_proj(u), transposed; B, C: a split of x_proj, transposed
        xz = rand(batch, seqlen, 2 * channels).to(dtype)
        x, z = (half.transpose(1, 2) for half in xz.chunk(2, dim=-1))
        x_dbl = rand(batch, seqlen, 3 + 2 * d_state).to(dtype)
        _, B, C = (part.transpose(1, 2) for part in x_dbl.split([3, d_state, d_state], dim=-1))
    else:
        x, z = channels_view(), channels_view()
        B, C = rand(batch, d_state, seqlen).to(dtype), rand(batch, d_state, seqlen).to(dtype)
    delta = channels_view(scale=0.5, shift=-1.0)
    delta[:, 0, 0] = 25.0  # softplus above its threshold (identity) ...
    delta[:, -1, -1] = -30.0  # ... and far below it
    return {
        "x": x,
        "weight": rand(channels, 1, width, scale=0.5).to(dtype)[:, 0],  # the layer's conv1d.weight[:, 0]
        "bias": rand(channels).to(dtype) if with_bias else None,
        "u": channels_view(),
        "delta": delta,
        "A": -torch.exp(rand(channels, d_state, scale=0.5)),
        "B": B,
        "C": C,
        "D": rand(channels),
        "z": z if with_z else None,
        "delta_bias": rand(channels, scale=0.5),
    }


def _compare(case: tuple, dtype: torch.dtype, device: str, seed: int) -> dict[str, float]:
    """Run both prefill ops through kernel and ref on the same random data; return error figures.
    The kernels write into NaN-filled buffers, so a position they leave unwritten shows as NaN."""
    from model_backends.sambay.ops import causal_conv1d as conv_ops
    from model_backends.sambay.ops import selective_scan as scan_ops
    from model_backends.sambay.ops.layout import empty_channels_last_like

    a = _inputs(case, dtype, device, seed)
    nan = float("nan")
    x, weight, bias = a["x"], a["weight"], a["bias"]
    conv_out = empty_channels_last_like(x).fill_(nan)
    conv_state = torch.full((*x.shape[:2], weight.shape[-1]), nan, dtype=dtype, device=device)
    got = conv_ops.causal_conv1d_triton(x, weight, bias, out=conv_out, conv_state=conv_state)
    conv_want, conv_state_want = conv_ops.causal_conv1d_ref(x, weight, bias)

    scan_args = [a[k] for k in SCAN_ARGS]
    y = empty_channels_last_like(a["u"]).fill_(nan)
    last_state = torch.full((*x.shape[:2], a["A"].shape[-1]), nan, device=device)
    got_scan = scan_ops.selective_scan_triton(*scan_args, out=y, last_state=last_state)
    y_want, last_state_want = scan_ops.selective_scan_ref(*scan_args)

    return {
        "conv_out": _scaled_error(conv_out, conv_want),
        "conv_state": _scaled_error(conv_state, conv_state_want),
        "conv_nan": float(conv_out.isnan().any() or conv_state.isnan().any()),
        "scan_out": _scaled_error(y, y_want),
        "scan_state": _scaled_error(last_state, last_state_want),
        "scan_nan": float(y.isnan().any() or last_state.isnan().any()),
        "not_the_given_buffers": float(
            got[0] is not conv_out
            or got[1] is not conv_state
            or got_scan[0] is not y
            or got_scan[1] is not last_state
        ),
    }


def _run_all(cases: dict, device: str) -> dict[str, dict[str, float]]:
    return {
        f"{name}-{dt_name}": _compare(case, dtype, device, seed=i)
        for i, (name, case) in enumerate(cases.items())
        for dt_name, dtype in DTYPES.items()
    }


def _check(errors: dict[str, float], dt_name: str) -> None:
    tol = TOLERANCE[dt_name]
    for key in ("conv_out", "scan_out", "scan_state"):
        assert errors[key] <= tol, (key, errors[key], tol)
    for key in ("conv_state", "conv_nan", "scan_nan", "not_the_given_buffers"):
        assert errors[key] == 0.0, (key, errors[key])


interpreter_figures = worker_fixture(__file__)


@pytest.mark.parametrize("dt_name", list(DTYPES))
@pytest.mark.parametrize("case_name", list(TINY_CASES))
def test_prefill_kernels_match_reference_under_interpreter(interpreter_figures, case_name: str, dt_name: str):
    _check(interpreter_figures[f"{case_name}-{dt_name}"], dt_name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("case_name", list(REAL_CASES))
def test_prefill_kernels_match_reference_on_gpu_at_real_size(case_name: str):
    errors = _compare(REAL_CASES[case_name], torch.bfloat16, "cuda", seed=11)
    _check(errors, "bf16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_prefill_kernels_allocate_their_outputs_on_gpu():
    """The default (out=None) path: every output position written, layouts as documented."""
    from model_backends.sambay.ops import causal_conv1d as conv_ops
    from model_backends.sambay.ops import selective_scan as scan_ops

    a = _inputs(TINY_CASES["odd_blocks"], torch.bfloat16, "cuda", seed=5)
    out, conv_state = conv_ops.causal_conv1d(a["x"], a["weight"], a["bias"])
    y, last_state = scan_ops.selective_scan(*(a[k] for k in SCAN_ARGS))
    assert out.stride(1) == 1 and y.stride(1) == 1  # [B, T, C] underneath, like the layer's views
    assert conv_state.is_contiguous() and last_state.is_contiguous() and last_state.dtype == torch.float32
    torch.testing.assert_close(out, conv_ops.causal_conv1d_ref(a["x"], a["weight"], a["bias"])[0])
    assert torch.isfinite(y).all() and torch.isfinite(last_state).all()


# Arguments Triton's launcher specializes to the constant 1 for the layer's layouts (channel-stride-1
# views, [B, T, C] outputs, contiguous weights / A / states); compiled the same way here.
_CONV_UNIT_STRIDES = ("stride_x_c", "stride_w_k", "stride_out_c", "stride_s_k")
_SCAN_UNIT_STRIDES = (
    "stride_u_c",
    "stride_dt_c",
    "stride_A_n",
    "stride_B_n",
    "stride_C_n",
    "stride_D_c",
    "stride_z_c",
    "stride_dtb_c",
    "stride_out_c",
    "stride_s_n",
)


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not importable")
def test_conv_prefill_kernel_compiles_for_h100_without_spills():
    """At the blocks the wrapper picks for the published model (d_inner 5120, d_conv 4, bf16, a
    2K-token prompt), compiled for sm_90 by Triton + ptxas with no GPU."""
    from model_backends.sambay.ops import causal_conv1d as conv_ops
    from tests.model_backends.sambay.triton_aot import compile_for_gpu

    block_c, block_t = conv_ops._conv_blocks(5120, 2048)
    info = compile_for_gpu(
        conv_ops._causal_conv1d_kernel,
        {n: "*bf16" for n in ("x_ptr", "w_ptr", "bias_ptr", "out_ptr", "state_ptr")},
        {"K": 4, "HAS_BIAS": True, "BLOCK_C": block_c, "BLOCK_T": block_t, "BLOCK_K": 4}
        | dict.fromkeys(_CONV_UNIT_STRIDES, 1),
        num_warps=4,
        hint_strides=True,
    )
    assert info.registers > 0 and info.spill_stores == 0, info


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not importable")
@pytest.mark.parametrize("has_z", [True, False])
def test_scan_prefill_kernel_compiles_for_h100_without_spills(has_z: bool):
    """d_inner 5120, d_state 16, bf16 activations, fp32 A / D / delta_bias / state; with the z gate
    (layers 0-14) and without (the memory layer)."""
    from model_backends.sambay.ops import selective_scan as scan_ops
    from tests.model_backends.sambay.triton_aot import compile_for_gpu

    block_c, block_n, num_warps = scan_ops._scan_blocks(5120, 16)
    info = compile_for_gpu(
        scan_ops._selective_scan_kernel,
        {n: "*bf16" for n in ("u_ptr", "dt_ptr", "B_ptr", "C_ptr", "z_ptr", "out_ptr")}
        | {n: "*fp32" for n in ("A_ptr", "D_ptr", "dt_bias_ptr", "state_ptr")},
        {"HAS_Z": has_z, "BLOCK_C": block_c, "BLOCK_N": block_n} | dict.fromkeys(_SCAN_UNIT_STRIDES, 1),
        num_warps=num_warps,
        hint_strides=True,
    )
    assert info.registers > 0 and info.spill_stores == 0, info


@pytest.mark.parametrize("op_name", ["conv", "scan"])
def test_prefill_dispatcher_uses_reference_on_cpu_and_says_so(monkeypatch, caplog, op_name: str):
    from model_backends.sambay.ops import causal_conv1d as conv_ops
    from model_backends.sambay.ops import dispatch
    from model_backends.sambay.ops import selective_scan as scan_ops

    monkeypatch.setattr(dispatch, "_logged", set())
    a = _inputs(TINY_CASES["odd_blocks"], torch.float32, "cpu", seed=3)
    with caplog.at_level(logging.INFO, logger=dispatch.__name__):
        if op_name == "conv":
            got = conv_ops.causal_conv1d(a["x"], a["weight"], a["bias"])
            want = conv_ops.causal_conv1d_ref(a["x"], a["weight"], a["bias"])
        else:
            args = [a[k] for k in SCAN_ARGS]
            got, want = scan_ops.selective_scan(*args), scan_ops.selective_scan_ref(*args)
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    assert any("reference path" in r.getMessage() for r in caplog.records)


if __name__ == "__main__":  # the interpreter worker (see module docstring)
    worker_main(lambda: _run_all(TINY_CASES, "cpu"))
