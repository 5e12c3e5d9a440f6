"""Triton differential-attention kernels (decode and prefill) against their `_ref` twins.

On CPU the kernels run under the Triton interpreter. TRITON_INTERPRET must be set before triton is
first imported, and other tests import it without, so the comparisons run in a child process: this
file doubles as that worker (`python test_ops_triton_attention.py` prints one JSON object of error
figures). Every case reads NaN wherever a kernel must not look (cache rows past a sequence's length,
unused pool slots, the pad row's query, positions past Tk) and writes into a NaN-filled output, so an
out-of-range read or a missed store shows up as NaN.
"""

from __future__ import annotations

import logging

import pytest
import torch

from tests.model_backends.sambay.interpreter import HAS_TRITON, worker_fixture, worker_main

# name -> (Hq, Hkv, D, cache rows S, cache length of each real sequence, with a pad slot, key splits).
# Decode blocks are 64 keys: 150 spans three blocks, 1 is a single key, 30 > S = 24 is a full ring
# (24 == S just full, 10 partly filled); with 3 splits a 65-key sequence leaves its last split empty.
DECODE_CASES = {
    "g2-d16-full-cache": (4, 2, 16, 160, [150, 1, 67], True, 1),
    "g2-d8-ring-2splits": (8, 4, 8, 24, [30, 24, 10], True, 2),
    "g4-d64-3splits": (8, 2, 64, 140, [139, 65, 3], True, 3),
    "g1-d16-no-pad": (2, 2, 16, 40, [40, 17], False, 1),
}
# name -> (B, Tq, Tk, Hq, Hkv, D, window). A prefill tile is 64 rows = 64 // group queries and 64 keys.
PREFILL_CASES = {
    "self-g2-d16-causal": (2, 37, 37, 4, 2, 16, None),
    "tail-g4-d8-window5": (1, 9, 75, 8, 2, 8, 5),  # window smaller than a tile, queries at the end
    "self-g2-d64-window-over-tk": (1, 40, 40, 8, 4, 64, 100),
    "tail-g1-d16-window30": (2, 20, 83, 2, 2, 16, 30),
    "self-g2-d16-window70": (1, 100, 100, 4, 2, 16, 70),  # 4 query tiles, later ones skip key tiles
    "one-query-all-keys": (2, 1, 90, 4, 2, 16, None),  # routed to the decode kernel
    "one-query-window": (1, 1, 90, 4, 2, 16, 20),
}
REAL_DECODE_CASES = {  # the published model: 40 Q heads, 20 KV heads, head_dim 64
    "full-cache-8192": (40, 20, 64, 8192, None, True, None),
    "full-cache-8192-8splits": (40, 20, 64, 8192, None, True, 8),
    "swa-ring-512": (40, 20, 64, 512, None, True, None),
}
REAL_PREFILL_CASES = {
    "swa-2048": (1, 2048, 2048, 40, 20, 64, 512),
    "full-2048": (1, 2048, 2048, 40, 20, 64, None),
    "cross-one-query-8192": (2, 1, 8192, 40, 20, 64, None),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# Errors are |kernel - ref| / (1 + |ref|), the worst and the mean over the real rows. fp32: only the
# order of fp32 operations differs (measured <= 6e-7). bf16: the kernel rounds P to bf16 before P @ V
# (as flash attention does; the ref keeps P in fp32), and a one-ulp flip where both round the halves,
# lam * A2 and their difference to bf16 is amplified by the RMSNorm in a feature where A1 ~ lam * A2
# (measured worst <= 0.009 on these cases, 0.014 with the published heads and 300 x 700 prefill).
TOLERANCE = {"fp32": 2e-5, "bf16": 3e-2}
MEAN_TOLERANCE = {"fp32": 2e-6, "bf16": 2e-3}


def _scaled_error(got: torch.Tensor, want: torch.Tensor) -> tuple[float, float]:
    err = (got.float() - want.float()).abs() / (1 + want.float().abs())
    return float(err.max()), float(err.mean())


def _core_args(D: int, dtype: torch.dtype, device: str, gen: torch.Generator) -> tuple:
    lam = (0.2 + 0.3 * torch.rand((), generator=gen)).to(device)  # 0-dim fp32 on the device
    lambda_init = 0.8 - 0.6 * float(torch.rand((), generator=gen))
    weight = (1 + 0.1 * torch.randn(2 * D, generator=gen)).to(dtype).to(device)
    return lam, lambda_init, weight, 1e-5


def _decode_inputs(
    case: tuple, dtype: torch.dtype, device: str, seed: int, cache_dtype: torch.dtype | None = None
) -> dict:
    Hq, Hkv, D, S, lens, with_pad, splits = case
    gen = torch.Generator().manual_seed(seed)
    if lens is None:  # real sizes: 64 sequences, one exactly full, the rest random lengths
        lens = torch.randint(1, 4 * S if S <= 512 else S, (63,), generator=gen).tolist()
        lens[0] = S
    num_real = len(lens)
    batch = num_real + int(with_pad)
    num_slots = batch + 2  # two slots nobody uses (NaN throughout), the last among them
    slot_of_row = torch.randperm(num_slots - 1, generator=gen)[:batch]
    lens_t = torch.tensor(lens + [0] * int(with_pad))
    if with_pad:
        pad_row = batch // 2
        order = list(range(num_real))
        order.insert(pad_row, num_real)  # the pad row sits in the middle
        slot_of_row, lens_t = slot_of_row[order], lens_t[order]
        slot_of_row[pad_row] = -1
    k_cache = torch.full((num_slots, S, Hkv, D), float("nan"))
    v_cache = torch.full((num_slots, S, Hkv, D), float("nan"))
    for slot, length in zip(slot_of_row.tolist(), lens_t.tolist(), strict=True):
        if slot >= 0:
            rows = min(length, S)
            k_cache[slot, :rows] = torch.randn(rows, Hkv, D, generator=gen)
            v_cache[slot, :rows] = torch.randn(rows, Hkv, D, generator=gen)
    # q is a strided view, as the layer passes it: the first part of the fused Wqkv output
    qkv = torch.randn(batch, (Hq + 2 * Hkv) * D, generator=gen)
    if with_pad:
        qkv[pad_row] = float("nan")
    q = qkv.to(dtype).to(device)[:, : Hq * D].view(batch, Hq, D)
    return {
        "q": q,
        "k_cache": k_cache.to(cache_dtype or dtype).to(device),
        "v_cache": v_cache.to(cache_dtype or dtype).to(device),
        "slots": slot_of_row.to(device),
        "cache_lens": lens_t.to(device),
        "core": _core_args(D, dtype, device, gen),
        "splits": splits,
    }


def _compare_decode(
    case: tuple, dtype: torch.dtype, device: str, seed: int, cache_dtype: torch.dtype | None = None
) -> dict[str, float]:
    from model_backends.sambay.ops import diff_attention as attention_ops

    a = _decode_inputs(case, dtype, device, seed, cache_dtype)
    cache_args = (a["q"], a["k_cache"], a["v_cache"], a["slots"], a["cache_lens"])
    out = torch.full(
        (a["q"].shape[0], a["q"].shape[1] * a["q"].shape[2]), float("nan"), dtype=dtype, device=device
    )
    got = attention_ops.diff_attention_decode_triton(*cache_args, *a["core"], out=out, num_splits=a["splits"])
    want = attention_ops.diff_attention_decode_ref(*cache_args, *a["core"])
    real = a["slots"] >= 0
    worst, mean = _scaled_error(got[real], want[real])
    return {
        "out": worst,
        "mean": mean,
        "returned_out": float(got.data_ptr() == out.data_ptr()),
        "nan": float(got.isnan().any()),
        "ref_nan": float(want.isnan().any()),
        "pad_rows": float(got[~real].abs().max()) if bool((~real).any()) else 0.0,
    }


def _compare_prefill(case: tuple, dtype: torch.dtype, device: str, seed: int) -> dict[str, float]:
    from model_backends.sambay.ops import diff_attention as attention_ops

    B, Tq, Tk, Hq, Hkv, D, window = case
    gen = torch.Generator().manual_seed(seed)
    # q/k/v are splits of one projection over a buffer with NaN rows past Tk: reading there poisons
    qkv = torch.randn(B, Tk + 3, (Hq + 2 * Hkv) * D, generator=gen)
    qkv[:, Tk:] = float("nan")
    qkv = qkv.to(dtype).to(device)
    q = qkv[:, Tk - Tq : Tk, : Hq * D].unflatten(-1, (Hq, D))
    k = qkv[:, :Tk, Hq * D : (Hq + Hkv) * D].unflatten(-1, (Hkv, D))
    v = qkv[:, :Tk, (Hq + Hkv) * D :].unflatten(-1, (Hkv, D))
    core = _core_args(D, dtype, device, gen)
    out = torch.full((B, Tq, Hq * D), float("nan"), dtype=dtype, device=device)
    got = attention_ops.diff_attention_triton(q, k, v, *core, window, out=out)
    want = attention_ops.diff_attention_ref(q, k, v, *core, window)
    worst, mean = _scaled_error(got, want)
    return {
        "out": worst,
        "mean": mean,
        "returned_out": float(got.data_ptr() == out.data_ptr()),
        "nan": float(got.isnan().any()),
        "ref_nan": float(want.isnan().any()),
        "pad_rows": 0.0,
    }


def _run_all(device: str) -> dict[str, dict[str, float]]:
    results = {}
    for i, (name, case) in enumerate(DECODE_CASES.items()):
        for dt_name, dtype in DTYPES.items():
            results[f"decode-{name}-{dt_name}"] = _compare_decode(case, dtype, device, seed=i)
    # an fp32 state pool under a bf16 model: the kernel upcasts q and runs the math in fp32
    mixed = DECODE_CASES["g4-d64-3splits"]
    results["decode-fp32-pool-bf16"] = _compare_decode(mixed, torch.bfloat16, device, 9, torch.float32)
    for i, (name, case) in enumerate(PREFILL_CASES.items()):
        for dt_name, dtype in DTYPES.items():
            results[f"prefill-{name}-{dt_name}"] = _compare_prefill(case, dtype, device, seed=100 + i)
    return results


def _check(errors: dict[str, float], dt_name: str) -> None:
    assert errors["out"] <= TOLERANCE[dt_name], ("max error", errors["out"], TOLERANCE[dt_name])
    assert errors["mean"] <= MEAN_TOLERANCE[dt_name], ("mean error", errors["mean"], MEAN_TOLERANCE[dt_name])
    for key in ("nan", "ref_nan", "pad_rows"):
        assert errors[key] == 0.0, (key, errors[key])
    assert errors["returned_out"] == 1.0, "the out= buffer is not what came back"


interpreter_figures = worker_fixture(__file__)


@pytest.mark.parametrize("dt_name", list(DTYPES))
@pytest.mark.parametrize("case_name", list(DECODE_CASES))
def test_decode_kernel_matches_reference_under_interpreter(interpreter_figures, case_name: str, dt_name: str):
    _check(interpreter_figures[f"decode-{case_name}-{dt_name}"], dt_name)


def test_decode_kernel_with_a_cache_dtype_other_than_q_under_interpreter(interpreter_figures):
    _check(interpreter_figures["decode-fp32-pool-bf16"], "bf16")


@pytest.mark.parametrize("dt_name", list(DTYPES))
@pytest.mark.parametrize("case_name", list(PREFILL_CASES))
def test_prefill_kernel_matches_reference_under_interpreter(
    interpreter_figures, case_name: str, dt_name: str
):
    _check(interpreter_figures[f"prefill-{case_name}-{dt_name}"], dt_name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("case_name", list(REAL_DECODE_CASES))
def test_decode_kernel_matches_reference_on_gpu_at_real_size(case_name: str):
    errors = _compare_decode(REAL_DECODE_CASES[case_name], torch.bfloat16, "cuda", seed=7)
    _check(errors, "bf16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("case_name", list(REAL_PREFILL_CASES))
def test_prefill_kernel_matches_reference_on_gpu_at_real_size(case_name: str):
    errors = _compare_prefill(REAL_PREFILL_CASES[case_name], torch.bfloat16, "cuda", seed=8)
    _check(errors, "bf16")


@pytest.mark.parametrize("op_name", ["prefill", "decode"])
def test_dispatcher_uses_reference_on_cpu_and_says_so(monkeypatch, caplog, op_name: str):
    from model_backends.sambay.ops import diff_attention as attention_ops
    from model_backends.sambay.ops import dispatch

    monkeypatch.setattr(dispatch, "_logged", set())
    with caplog.at_level(logging.INFO, logger=dispatch.__name__):
        if op_name == "prefill":
            B, Tq, Tk, Hq, Hkv, D, window = PREFILL_CASES["self-g2-d16-window70"]
            gen = torch.Generator().manual_seed(5)
            q = torch.randn(B, Tq, Hq, D, generator=gen)
            k, v = torch.randn(B, Tk, Hkv, D, generator=gen), torch.randn(B, Tk, Hkv, D, generator=gen)
            args = (q, k, v, *_core_args(D, torch.float32, "cpu", gen), window)
            got = attention_ops.diff_attention(*args, query_chunk=16)
            want = attention_ops.diff_attention_ref(*args, query_chunk=16)
        else:
            a = _decode_inputs(DECODE_CASES["g2-d16-full-cache"], torch.float32, "cpu", seed=5)
            args = (a["q"], a["k_cache"], a["v_cache"], a["slots"], a["cache_lens"], *a["core"])
            got = attention_ops.diff_attention_decode(*args)
            want = attention_ops.diff_attention_decode_ref(*args)
    assert torch.equal(got, want)
    assert any("reference path" in r.getMessage() for r in caplog.records)


# -- ahead-of-time compile for sm_90 at the blocks the wrappers pick for the published model ----------

_UNIT_STRIDES = {"stride_q_d": 1, "stride_k_d": 1, "stride_v_d": 1, "stride_out_c": 1}  # as at run time
_FP32_SCALARS = {"sm_scale": "fp32", "eps": "fp32", "out_scale": "fp32"}
_PUBLISHED_GROUP, _PUBLISHED_HEAD_DIM = 40 // 20, 64


def _launch_split(cfg: dict) -> tuple[dict, dict]:
    cfg = dict(cfg, INTERPRETER=False)  # the GPU path (the flag is set only under the interpreter)
    return cfg, {"num_warps": cfg.pop("num_warps"), "num_stages": cfg.pop("num_stages")}


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not importable")
@pytest.mark.parametrize(
    ("num_splits", "cache_type"),
    [(1, "bf16"), (8, "bf16"), (1, "fp32")],
    ids=["one-pass", "split", "fp32-pool"],
)
def test_decode_kernel_compiles_for_h100_without_spills(num_splits: int, cache_type: str):
    """bf16 q / weight, bf16 caches (or an fp32 pool: fp32 math), fp32 lambda and partials; one
    program per (sequence, KV pair, split)."""
    from model_backends.sambay.ops import diff_attention as attention_ops
    from tests.model_backends.sambay.triton_aot import compile_for_gpu

    config = attention_ops._decode_config(_PUBLISHED_GROUP, _PUBLISHED_HEAD_DIM, upcast=cache_type != "bf16")
    cfg, launch = _launch_split(config)
    info = compile_for_gpu(
        attention_ops._diff_attn_decode_kernel,
        {n: "*bf16" for n in ("q_ptr", "w_ptr", "out_ptr")}
        | {n: f"*{cache_type}" for n in ("k_ptr", "v_ptr")}
        | {"slots_ptr": "*i64", "lens_ptr": "*i64"}
        | {n: "*fp32" for n in ("lam_ptr", "part_acc_ptr", "part_ml_ptr")},
        {"GROUP": _PUBLISHED_GROUP, "NUM_SPLITS": num_splits} | cfg | _UNIT_STRIDES,
        scalar_types=_FP32_SCALARS,
        **launch,
        hint_strides=True,
    )
    assert info.registers > 0 and info.spill_stores == 0, info


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not importable")
def test_decode_combine_kernel_compiles_for_h100_without_spills():
    from model_backends.sambay.ops import diff_attention as attention_ops
    from tests.model_backends.sambay.triton_aot import compile_for_gpu

    cfg = attention_ops._decode_config(_PUBLISHED_GROUP, _PUBLISHED_HEAD_DIM, upcast=False)
    info = compile_for_gpu(
        attention_ops._diff_attn_decode_combine_kernel,
        {"slots_ptr": "*i64", "w_ptr": "*bf16", "out_ptr": "*bf16"}
        | {n: "*fp32" for n in ("lam_ptr", "part_acc_ptr", "part_ml_ptr")},
        {"GROUP": _PUBLISHED_GROUP, "NUM_SPLITS": 8, "stride_out_c": 1, "INTERPRETER": False}
        | {n: cfg[n] for n in ("HEAD_DIM", "BLOCK_R", "BLOCK_D")},
        scalar_types={"eps": "fp32", "out_scale": "fp32"},
        num_warps=4,
        hint_strides=True,
    )
    assert info.registers > 0 and info.spill_stores == 0, info


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not importable")
@pytest.mark.parametrize(
    ("dtype", "has_window"),
    [("bf16", True), ("bf16", False), ("fp32", True)],
    ids=["swa", "full", "fp32-swa"],
)
def test_prefill_kernel_compiles_for_h100_without_spills(dtype: str, has_window: bool):
    from model_backends.sambay.ops import diff_attention as attention_ops
    from tests.model_backends.sambay.triton_aot import compile_for_gpu

    config = attention_ops._prefill_config(_PUBLISHED_GROUP, _PUBLISHED_HEAD_DIM, upcast=dtype == "fp32")
    cfg, launch = _launch_split(config)
    info = compile_for_gpu(
        attention_ops._diff_attn_prefill_kernel,
        {n: f"*{dtype}" for n in ("q_ptr", "k_ptr", "v_ptr", "w_ptr", "out_ptr")} | {"lam_ptr": "*fp32"},
        {"GROUP": _PUBLISHED_GROUP, "HAS_WINDOW": has_window} | cfg | _UNIT_STRIDES,
        scalar_types=_FP32_SCALARS,
        **launch,
        hint_strides=True,
    )
    assert info.registers > 0 and info.spill_stores == 0, info


if __name__ == "__main__":  # the interpreter worker (see module docstring)
    worker_main(lambda: _run_all("cpu"))
