"""Triton decode kernels (causal_conv1d_update, selective_state_update) against their `_ref` twins.

On CPU the kernels run under the Triton interpreter. TRITON_INTERPRET must be set before triton is
first imported, and other tests import it without, so the comparisons run in a child process: this
file doubles as that worker (`python test_ops_triton.py` prints one JSON object of error figures).
"""

from __future__ import annotations

import logging

import pytest
import torch

from tests.model_backends.sambay.interpreter import HAS_TRITON, worker_fixture, worker_main

# name -> (batch, channels, d_state, conv width, with z gate, with pad slot, with conv bias)
TINY_CASES = {
    "odd": (3, 37, 5, 4, True, True, True),
    "two_channel_blocks": (5, 300, 16, 3, False, True, False),
    "single_no_pad": (1, 7, 1, 2, True, False, True),
}
REAL_CASES = {"real_batch64": (64, 5120, 16, 4, True, True, True)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# fp32: kernel and ref differ only by fp32 op order. bf16: inputs/outputs bf16 (state fp32), so one
# bf16 rounding of the output may differ; errors are measured as |kernel - ref| / (1 + |ref|).
TOLERANCE = {"fp32": 1e-5, "bf16": 1e-2}


def _scaled_error(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.float(), want.float()
    return float(((got - want).abs() / (1 + want.abs())).max())


def _slots(batch: int, num_slots: int, with_pad: bool, gen: torch.Generator) -> torch.Tensor:
    slots = torch.randperm(num_slots, generator=gen)[:batch]
    if with_pad:
        slots[batch // 2] = -1
    return slots


def _compare(case: tuple, dtype: torch.dtype, device: str, seed: int) -> dict[str, float]:
    """Run both decode ops through kernel and ref on the same random data; return error figures."""
    from model_backends.sambay.ops import causal_conv1d as conv_ops
    from model_backends.sambay.ops import selective_scan as scan_ops

    batch, channels, d_state, width, with_z, with_pad, with_bias = case
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale + shift).to(device)

    num_slots = batch + 3
    slots = _slots(batch, num_slots, with_pad, gen).to(device)
    real = slots >= 0
    untouched = [i for i in range(num_slots) if i not in slots.tolist()]  # includes the pool's last row

    # strided views, as the layer passes them: x is half of in_proj's output, B/C a split of x_proj
    x = rand(batch, 2 * channels).to(dtype)[:, :channels]
    weight = rand(channels, 1, width, scale=0.5).to(dtype)[:, 0]
    bias = rand(channels).to(dtype) if with_bias else None
    conv_pool = rand(num_slots, channels, width).to(dtype)
    conv_pool_ref, conv_pool_before = conv_pool.clone(), conv_pool.clone()
    conv_out = torch.full((batch, channels), float("nan"), dtype=dtype, device=device)
    conv_ops.causal_conv1d_update_triton(x, conv_pool, weight, bias, slots, out=conv_out)
    conv_want = conv_ops.causal_conv1d_update_ref(x, conv_pool_ref, weight, bias, slots)

    u = conv_want
    dt = rand(batch, channels, scale=0.5, shift=-1.0).to(dtype)
    A = -torch.exp(rand(channels, d_state, scale=0.5))
    BC = rand(batch, 3 + 2 * d_state).to(dtype)
    B, C = BC[:, 3 : 3 + d_state], BC[:, 3 + d_state :]
    D = rand(channels)
    z = rand(batch, channels).to(dtype) if with_z else None
    dt_bias = rand(channels, scale=0.5)
    ssm_pool = rand(num_slots, channels, d_state)
    ssm_pool_ref, ssm_pool_before = ssm_pool.clone(), ssm_pool.clone()
    y = torch.full((batch, channels), float("nan"), dtype=dtype, device=device)
    scan_ops.selective_state_update_triton(ssm_pool, u, dt, A, B, C, D, z, dt_bias, slots, out=y)
    y_want = scan_ops.selective_state_update_ref(ssm_pool_ref, u, dt, A, B, C, D, z, dt_bias, slots)

    return {
        "conv_out": _scaled_error(conv_out[real], conv_want[real]),
        "conv_state": _scaled_error(conv_pool, conv_pool_ref),  # whole pool: untouched rows must match
        "conv_nan": float(conv_out.isnan().any()),
        "conv_pad_rows": float(conv_out[~real].abs().max()) if with_pad else 0.0,
        "ssm_out": _scaled_error(y[real], y_want[real]),
        "ssm_state": _scaled_error(ssm_pool, ssm_pool_ref),
        "ssm_nan": float(y.isnan().any()),
        "ssm_pad_rows": float(y[~real].abs().max()) if with_pad else 0.0,
        "untouched_slots_changed": float(
            not torch.equal(conv_pool[untouched], conv_pool_before[untouched])
            or not torch.equal(ssm_pool[untouched], ssm_pool_before[untouched])
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
    for key in ("conv_out", "conv_state", "ssm_out", "ssm_state"):
        assert errors[key] <= tol, (key, errors[key], tol)
    for key in ("conv_nan", "ssm_nan", "conv_pad_rows", "ssm_pad_rows", "untouched_slots_changed"):
        assert errors[key] == 0.0, (key, errors[key])


interpreter_figures = worker_fixture(__file__)


@pytest.mark.parametrize("dt_name", list(DTYPES))
@pytest.mark.parametrize("case_name", list(TINY_CASES))
def test_kernels_match_reference_under_interpreter(interpreter_figures, case_name: str, dt_name: str):
    _check(interpreter_figures[f"{case_name}-{dt_name}"], dt_name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dt_name", list(DTYPES))
def test_kernels_match_reference_on_gpu_at_real_size(dt_name: str):
    errors = _compare(REAL_CASES["real_batch64"], DTYPES[dt_name], "cuda", seed=7)
    _check(errors, dt_name)


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not importable")
@pytest.mark.parametrize("state_dtype", ["fp32", "bf16"])
def test_decode_kernels_compile_for_h100_without_spills(state_dtype: str):
    """Both kernels at the block sizes their wrappers pick for the published model (d_inner 5120,
    d_state 16, d_conv 4, bf16 activations), compiled for sm_90 by Triton + ptxas with no GPU."""
    from model_backends.sambay.ops import causal_conv1d as conv_ops
    from model_backends.sambay.ops import selective_scan as scan_ops
    from tests.model_backends.sambay.triton_aot import compile_for_gpu

    state = {"fp32": "*fp32", "bf16": "*bf16"}[state_dtype]
    conv = compile_for_gpu(
        conv_ops._causal_conv1d_update_kernel,
        {n: "*bf16" for n in ("x_ptr", "w_ptr", "bias_ptr", "out_ptr")}
        | {"state_ptr": state, "slots_ptr": "*i64"},
        {"K": 4, "HAS_BIAS": True, "BLOCK_C": 256},
    )
    scan = compile_for_gpu(
        scan_ops._selective_state_update_kernel,
        {n: "*bf16" for n in ("x_ptr", "dt_ptr", "B_ptr", "C_ptr", "z_ptr", "out_ptr")}
        | {n: "*fp32" for n in ("state_ptr", "A_ptr", "D_ptr", "dt_bias_ptr")}
        | {"slots_ptr": "*i64"},
        {"HAS_Z": True, "BLOCK_C": 2048 // 16, "BLOCK_N": 16},
    )
    for info in (conv, scan):
        assert info.registers > 0 and info.spill_stores == 0, info


@pytest.mark.parametrize("op_name", ["conv", "scan"])
def test_dispatcher_uses_reference_on_cpu_and_says_so(monkeypatch, caplog, op_name: str):
    from model_backends.sambay.ops import causal_conv1d as conv_ops
    from model_backends.sambay.ops import dispatch
    from model_backends.sambay.ops import selective_scan as scan_ops

    monkeypatch.setattr(dispatch, "_logged", set())
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 6, generator=gen)
    slots = torch.tensor([1, 0])
    with caplog.at_level(logging.INFO, logger=dispatch.__name__):
        if op_name == "conv":
            w, b = torch.randn(6, 4, generator=gen), torch.randn(6, generator=gen)
            pool = torch.randn(3, 6, 4, generator=gen)
            pool_ref = pool.clone()
            got = conv_ops.causal_conv1d_update(x, pool, w, b, slots)
            want = conv_ops.causal_conv1d_update_ref(x, pool_ref, w, b, slots)
        else:
            pool = torch.randn(3, 6, 5, generator=gen)
            pool_ref = pool.clone()
            args = (x, x * 0.3, -torch.rand(6, 5, generator=gen), torch.randn(2, 5, generator=gen))
            rest = (
                torch.randn(2, 5, generator=gen),
                torch.randn(6, generator=gen),
                x,
                torch.randn(6, generator=gen),
            )
            got = scan_ops.selective_state_update(pool, *args, *rest, slots)
            want = scan_ops.selective_state_update_ref(pool_ref, *args, *rest, slots)
    assert torch.equal(got, want) and torch.equal(pool, pool_ref)
    assert any("reference path" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("mode", "triton_active", "kernel_on_cpu", "kernel_on_cpu_without_triton"),
    [
        ("auto", HAS_TRITON, False, False),  # auto: kernels for CUDA tensors only
        ("reference", False, False, False),  # the reference everywhere, kernels and graphs off
        ("triton", HAS_TRITON, True, False),  # forced (CPU: under the interpreter); needs triton
    ],
)
def test_ops_modes(mode, triton_active, kernel_on_cpu, kernel_on_cpu_without_triton):
    from model_backends.sambay.ops.dispatch import Ops

    ops = Ops(mode)
    assert ops.triton_active() == triton_active
    assert ops.use_triton("any_op", torch.zeros(1), True) == kernel_on_cpu
    assert ops.use_triton("any_op", torch.zeros(1), False) == kernel_on_cpu_without_triton
    assert Ops.parse(f" {mode.upper()} ", "X") == ops and Ops.parse(None, "X") == Ops.parse("", "X") == Ops(
        "auto"
    )


if __name__ == "__main__":  # the interpreter worker (see module docstring)
    worker_main(lambda: _run_all(TINY_CASES, "cpu"))
