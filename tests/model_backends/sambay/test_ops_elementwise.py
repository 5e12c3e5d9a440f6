"""Fused elementwise ops (swiglu, silu_mul, add_layernorm): the layers using them against their unfused
expressions (bit for bit), Triton kernels against the refs.

On CPU the kernels run under the Triton interpreter in a child process (TRITON_INTERPRET must be set
before triton is first imported): this file doubles as that worker (`python test_ops_elementwise.py`
prints one JSON object of error figures).

Tolerances, as |kernel - ref| / (1 + |ref|): fp32 outputs 1e-5 (silu's exp and LayerNorm's reduction
order differ by a few fp32 ulps); bf16 outputs 1e-2 (one bf16 ulp is 2^-8 relative) AND at least 99%
of the elements bit-identical, since the kernels reproduce PyTorch's rounding order and an fp32 ulp of
difference flips a bf16 rounding only near a tie. The residual sum is exact: always bit-identical.
"""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from tests.model_backends.sambay.interpreter import HAS_TRITON, worker_fixture, worker_main

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2}
MIN_IDENTICAL_BF16 = 0.99

# swiglu: the fc1 output shape [..., 2I]
SWIGLU_CASES = {"tail": (3, 2 * 37), "two_blocks_rank3": (2, 3, 2 * 1500), "single": (1, 2)}
# silu_mul: shape of a and b; a is the first half of a [..., 2C] tensor (strided), as in_proj gives it
SILU_MUL_CASES = {"strided": (7, 333), "rank3": (2, 3, 1100), "single": (1, 5)}
# add_layernorm: (rows, width, residual dtype, x dtype, weight dtype, with bias)
ADD_LN_CASES = {
    "ssm_layer": (3, 300, torch.float32, torch.bfloat16, torch.bfloat16, True),  # fp32 residual
    "attn_layer": (7, 37, torch.bfloat16, torch.bfloat16, torch.bfloat16, True),
    "fp32_model": (1, 300, torch.float32, torch.float32, torch.float32, True),
    "no_bias": (3, 64, torch.float32, torch.bfloat16, torch.bfloat16, False),
    "hidden_2560": (2, 2560, torch.float32, torch.bfloat16, torch.bfloat16, True),
}
REAL = {
    "swiglu": [(64, 20480), (4096, 20480)],
    "silu_mul": [(64, 5120), (4096, 5120)],
    "add_ln": [
        (64, 2560, torch.float32, torch.bfloat16, torch.bfloat16, True),
        (4096, 2560, torch.float32, torch.bfloat16, torch.bfloat16, True),
        (64, 2560, torch.bfloat16, torch.bfloat16, torch.bfloat16, True),
    ],
}


def _figures(got: torch.Tensor, want: torch.Tensor) -> dict[str, float]:
    same_meta = got.dtype == want.dtype and got.shape == want.shape
    g, w = got.float(), want.float()
    return {
        "err": float(((g - w).abs() / (1 + w.abs())).max()) if same_meta else float("inf"),
        "identical": float((got == want).float().mean()) if same_meta else 0.0,
        "nan": float(got.isnan().any()),
        "meta_ok": float(same_meta),
        "bf16": float(want.dtype == torch.bfloat16),
    }


def _poisoned(shape, dtype, device) -> torch.Tensor:
    return torch.full(shape, float("nan"), dtype=dtype, device=device)


def compare_swiglu(shape: tuple, dtype: torch.dtype, device: str, seed: int) -> dict:
    from model_backends.sambay.ops import elementwise as ew

    gen = torch.Generator().manual_seed(seed)
    gate_up = (torch.randn(*shape, generator=gen) * 3).to(device, dtype)
    out = _poisoned((*shape[:-1], shape[-1] // 2), dtype, device)
    assert ew.swiglu_triton(gate_up, out=out) is out
    return {"out": _figures(out, ew.swiglu_ref(gate_up))}


def compare_silu_mul(shape: tuple, dtypes: tuple, device: str, seed: int) -> dict:
    from model_backends.sambay.ops import elementwise as ew

    gen = torch.Generator().manual_seed(seed)
    a = (torch.randn(*shape[:-1], 2 * shape[-1], generator=gen) * 3).to(device, dtypes[0])[..., : shape[-1]]
    b = torch.randn(*shape, generator=gen).to(device, dtypes[1])
    out = _poisoned(shape, torch.promote_types(*dtypes), device)
    assert ew.silu_mul_triton(a, b, out=out) is out
    return {"out": _figures(out, ew.silu_mul_ref(a, b))}


def compare_add_ln(case: tuple, device: str, seed: int) -> dict:
    from model_backends.sambay.ops import elementwise as ew

    rows, width, res_dtype, x_dtype, w_dtype, with_bias = case
    gen = torch.Generator().manual_seed(seed)
    residual = (torch.randn(rows, width, generator=gen) * 2 + 0.5).to(device, res_dtype)
    x = torch.randn(rows, width, generator=gen).to(device, x_dtype)
    weight = (1 + 0.2 * torch.randn(width, generator=gen)).to(device, w_dtype)
    bias = (0.1 * torch.randn(width, generator=gen)).to(device, w_dtype) if with_bias else None
    out = (
        _poisoned((rows, width), torch.promote_types(res_dtype, x_dtype), device),
        _poisoned((rows, width), w_dtype, device),
    )
    total, normed = ew.add_layernorm_triton(residual, x, weight, bias, 1e-5, out=out)
    assert total is out[0] and normed is out[1]
    want_total, want_normed = ew.add_layernorm_ref(residual, x, weight, bias, 1e-5)
    return {"sum": _figures(total, want_total), "normed": _figures(normed, want_normed)}


def _run_all() -> dict[str, dict]:
    results = {}
    for i, (name, shape) in enumerate(SWIGLU_CASES.items()):
        for dt_name, dtype in DTYPES.items():
            results[f"swiglu-{name}-{dt_name}"] = compare_swiglu(shape, dtype, "cpu", seed=i)
    for i, (name, shape) in enumerate(SILU_MUL_CASES.items()):
        for dt_name, dtype in DTYPES.items():
            results[f"silu_mul-{name}-{dt_name}"] = compare_silu_mul(shape, (dtype, dtype), "cpu", seed=i)
    mixed = (torch.bfloat16, torch.float32)  # a bf16 gate times fp32 values: an fp32 result
    results["silu_mul-mixed-bf16_fp32"] = compare_silu_mul((4, 300), mixed, "cpu", seed=9)
    for i, (name, case) in enumerate(ADD_LN_CASES.items()):
        results[f"add_ln-{name}"] = compare_add_ln(case, "cpu", seed=i)
    return results


def _check(figures: dict[str, dict[str, float]]) -> None:
    for output, f in figures.items():
        assert f["meta_ok"] == 1.0 and f["nan"] == 0.0, (output, f)
        bf16 = f["bf16"] == 1.0
        assert f["err"] <= TOLERANCE[torch.bfloat16 if bf16 else torch.float32], (output, f)
        if bf16:
            assert f["identical"] >= MIN_IDENTICAL_BF16, (output, f)
        if output == "sum":
            assert f["identical"] == 1.0, (output, f)


interpreter_figures = worker_fixture(__file__)


def _interpreter_keys() -> list[str]:
    keys = [f"swiglu-{n}-{d}" for n in SWIGLU_CASES for d in DTYPES]
    keys += [f"silu_mul-{n}-{d}" for n in SILU_MUL_CASES for d in DTYPES] + ["silu_mul-mixed-bf16_fp32"]
    return keys + [f"add_ln-{n}" for n in ADD_LN_CASES]


@pytest.mark.parametrize("key", _interpreter_keys())
def test_kernels_match_reference_under_interpreter(interpreter_figures, key: str):
    _check(interpreter_figures[key])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dt_name", list(DTYPES))
def test_kernels_match_reference_on_gpu_at_real_size(dt_name: str):
    dtype = DTYPES[dt_name]
    for shape in REAL["swiglu"]:
        _check(compare_swiglu(shape, dtype, "cuda", seed=1))
    for shape in REAL["silu_mul"]:
        _check(compare_silu_mul(shape, (dtype, dtype), "cuda", seed=2))
    for case in REAL["add_ln"]:
        if dtype == torch.float32:
            case = (*case[:2], torch.float32, torch.float32, torch.float32, case[5])
        _check(compare_add_ln(case, "cuda", seed=3))


# --- the layers, now calling these ops, compute exactly what their plain expressions did -----------


def _config():
    from model_backends.sambay.model.config import SambaYConfig

    return SambaYConfig(
        vocab_size=64,
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=8,
    )


def _randomised(module: torch.nn.Module, dtype: torch.dtype, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3 + (1.0 if p.ndim == 1 else 0.0))
    return module.to(dtype)


@pytest.mark.parametrize("dt_name", list(DTYPES))
def test_fused_layers_equal_their_unfused_expressions_bit_for_bit(dt_name: str):
    """On CPU the layers run the refs; each side here is the expression layers.py had before fusion."""
    from model_backends.sambay.model import layers, mamba
    from model_backends.sambay.model.config import GMU, MAMBA, SWA_ATTN

    dtype, config = DTYPES[dt_name], _config()
    gen = torch.Generator().manual_seed(0)
    H, C = config.hidden_size, config.d_inner

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to(dtype)

    with torch.no_grad():
        mlp = _randomised(layers.MLP(config), dtype, 1)
        x = rand(2, 5, H)
        gate, up = mlp.fc1(x).chunk(2, dim=-1)
        assert torch.equal(mlp(x), mlp.fc2(up * F.silu(gate)))

        gmu = _randomised(mamba.GatedMemoryUnit(config), dtype, 2)
        u, memory = rand(2, 5, H), rand(2, 5, C)
        assert torch.equal(gmu(u, memory), gmu.out_proj(F.silu(gmu.in_proj(u)) * memory))

        block = _randomised(mamba.Mamba(config, exports_memory=True), dtype, 3)
        y, z = rand(3, C), rand(3, C, scale=3.0)
        finished = block._finish(y, z)
        assert torch.equal(finished.out, block.out_proj(y * F.silu(z)))
        assert finished.memory is y

        for kind in (MAMBA, GMU, SWA_ATTN):  # fp32 residual for SSM kinds, model dtype otherwise
            layer = _randomised(layers.DecoderLayer(config, 0, kind), dtype, 4)
            h, mixed = rand(2, 3, H, scale=4.0), rand(2, 3, H)
            norm = layer.post_attention_layernorm
            residual = h.float() if kind in (MAMBA, GMU) else h
            total = residual + mixed
            want = total + layer.mlp(norm(total.to(norm.weight.dtype)))
            assert torch.equal(layer.finish(h, mixed), want), kind


def test_ref_rounding_order_is_pytorchs_eager_one():
    """bf16 swiglu rounds silu(gate) to bf16 first, then the product: round(up * round(silu(gate)))."""
    from model_backends.sambay.ops import elementwise as ew

    gate_up = (torch.randn(64, 2 * 512, generator=torch.Generator().manual_seed(6)) * 3).bfloat16()
    gate, up = gate_up.float().chunk(2, dim=-1)
    twice = (up * F.silu(gate).bfloat16().float()).bfloat16()
    assert torch.equal(ew.swiglu_ref(gate_up), twice)
    assert not torch.equal(twice, (up * F.silu(gate)).bfloat16())  # a single rounding would differ


# --- dispatch and compilation ---------------------------------------------------------------------


@pytest.mark.parametrize("op_name", ["swiglu", "silu_mul", "add_layernorm"])
def test_dispatcher_uses_reference_on_cpu_and_says_so(monkeypatch, caplog, op_name: str):
    from model_backends.sambay.ops import dispatch
    from model_backends.sambay.ops import elementwise as ew

    monkeypatch.setattr(dispatch, "_logged", set())
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 3, 8, generator=gen), torch.randn(2, 3, 8, generator=gen)
    w, bias = torch.randn(8, generator=gen), torch.randn(8, generator=gen)
    with caplog.at_level(logging.INFO, logger=dispatch.__name__):
        if op_name == "swiglu":
            assert torch.equal(ew.swiglu(a), ew.swiglu_ref(a))
        elif op_name == "silu_mul":
            assert torch.equal(ew.silu_mul(a, b), ew.silu_mul_ref(a, b))
        else:
            got, want = ew.add_layernorm(a, b, w, bias, 1e-5), ew.add_layernorm_ref(a, b, w, bias, 1e-5)
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert any("reference path" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not importable")
@pytest.mark.parametrize("act", ["*bf16", "*fp32"])
def test_kernels_compile_for_h100_without_spills(act: str):
    """Both kernels at the block sizes their wrappers pick for the published model (swiglu rows of
    I = 10240, GMU rows of d_inner = 5120, hidden 2560), compiled for sm_90 with no GPU."""
    from model_backends.sambay.ops import elementwise as ew
    from tests.model_backends.sambay.triton_aot import compile_for_gpu

    infos = []
    for n_cols in (10240, 5120):
        config = ew.silu_mul_config(n_cols)
        assert config == {"BLOCK": 1024, "num_warps": 4}
        infos.append(
            compile_for_gpu(
                ew._silu_mul_kernel,
                {"a_ptr": act, "b_ptr": act, "out_ptr": act},
                {"BLOCK": config["BLOCK"]},
                num_warps=config["num_warps"],
            )
        )
    config = ew.add_layernorm_config(2560)
    assert config == {"BLOCK": 4096, "num_warps": 16}
    for residual in ("*fp32", act):
        infos.append(
            compile_for_gpu(
                ew._add_layernorm_kernel,
                {"res_ptr": residual, "x_ptr": act, "w_ptr": act, "bias_ptr": act, "out_ptr": act}
                | {"sum_ptr": "*fp32" if "fp32" in (residual + act) else act},
                {"HAS_BIAS": True, "BLOCK": config["BLOCK"]},
                scalar_types={"eps": "fp32"},
                num_warps=config["num_warps"],
            )
        )
    for info in infos:
        assert info.registers > 0 and info.spill_stores == 0, info


if __name__ == "__main__":  # the interpreter worker (see module docstring)
    worker_main(_run_all)
