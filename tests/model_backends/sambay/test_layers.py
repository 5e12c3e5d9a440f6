"""Layers against their formulas in sambay.md 4.2-4.8, with weights set by hand where it matters."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from model_backends.sambay.model.attention import DiffLambda
from model_backends.sambay.model.config import SambaYConfig
from model_backends.sambay.model.layers import MLP, DecoderLayer
from model_backends.sambay.model.mamba import GatedMemoryUnit, Mamba
from model_backends.sambay.testing import random_state_dict, tiny_config

CONFIG = SambaYConfig.from_dict(tiny_config())


def _randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return module


def test_mlp_gate_is_the_first_half_of_fc1():
    mlp = MLP(CONFIG)
    H, inter = CONFIG.hidden_size, CONFIG.intermediate_size
    x = torch.randn(3, H)
    with torch.no_grad():
        mlp.fc1.weight.zero_()
        mlp.fc1.weight[:inter] = torch.eye(inter, H)  # gate = x[:inter] (first half)
        mlp.fc1.weight[inter:] = 2 * torch.eye(inter, H)  # up = 2 x[:inter]
        mlp.fc2.weight.copy_(torch.eye(H, inter))
    g = x[:, : min(inter, H)]
    expected = torch.zeros(3, H)
    expected[:, : g.shape[1]] = 2 * g * F.silu(g)  # up * silu(gate), not gate * silu(up)
    torch.testing.assert_close(mlp(x), expected)


def test_gmu_is_out_proj_of_silu_in_proj_times_memory():
    gmu = _randomize(GatedMemoryUnit(CONFIG), 1)
    u, memory = torch.randn(2, 5, CONFIG.hidden_size), torch.randn(2, 5, CONFIG.d_inner)
    expected = (F.silu(u @ gmu.in_proj.weight.T) * memory) @ gmu.out_proj.weight.T
    torch.testing.assert_close(gmu(u, memory), expected)


def test_lambda_is_one_scalar_from_the_four_vectors():
    core = DiffLambda(CONFIG, layer_idx=3)
    with torch.no_grad():
        core.lambda_q1.fill_(0.5)
        core.lambda_k1.fill_(0.25)
        core.lambda_q2.fill_(-0.1)
    D = CONFIG.head_dim
    # exp(0.125 D) - exp(0) + lambda_init(3)
    assert core.lam().item() == pytest.approx(math.exp(0.125 * D) - 1 + 0.556058, rel=1e-5)


def _mamba(exports_memory: bool, seed: int = 0) -> Mamba:
    mamba = Mamba(CONFIG, exports_memory)
    weights = random_state_dict(tiny_config(), seed=seed)
    mamba.load_state_dict(
        {k.split("attn.", 1)[1]: v for k, v in weights.items() if k.startswith("model.layers.0.attn.")}
    )
    return mamba


def test_memory_mamba_exports_ungated_y_and_gates_its_own_output():
    plain, memory_layer = _mamba(False), _mamba(True)
    u = torch.randn(2, 9, CONFIG.hidden_size)
    gated, with_memory = plain(u), memory_layer(u)
    assert gated.memory is None
    torch.testing.assert_close(with_memory.out, gated.out, rtol=1e-5, atol=1e-6)  # same output form
    z = (u @ memory_layer.in_proj.weight.T)[..., CONFIG.d_inner :]
    expected_out = (with_memory.memory * F.silu(z)) @ memory_layer.out_proj.weight.T
    torch.testing.assert_close(with_memory.out, expected_out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("exports_memory", [False, True], ids=["mamba", "mamba_memory"])
def test_mamba_step_chain_equals_forward(exports_memory):
    mamba = _mamba(exports_memory, seed=4)
    T, C = 7, CONFIG.d_inner
    u = torch.randn(2, T, CONFIG.hidden_size)
    full = mamba(u)
    slots = torch.tensor([2, 0])
    conv = torch.zeros(3, C, CONFIG.mamba_d_conv)
    ssm = torch.zeros(3, C, CONFIG.mamba_d_state)
    steps = [mamba.step(u[:, t], conv, ssm, slots) for t in range(T)]
    torch.testing.assert_close(torch.stack([s.out for s in steps], 1), full.out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv[slots], full.conv_state)
    torch.testing.assert_close(ssm[slots], full.ssm_state, rtol=1e-5, atol=1e-6)
    if exports_memory:
        memory = torch.stack([s.memory for s in steps], 1)
        torch.testing.assert_close(memory, full.memory, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kind", "residual_dtype"),
    [
        ("mamba", torch.float32),
        ("gmu", torch.float32),
        ("swa_attn", torch.bfloat16),
        ("cross_attn", torch.bfloat16),
    ],
)
def test_residual_promoted_to_fp32_only_after_ssm_type_layers(kind, residual_dtype):
    layer = DecoderLayer(CONFIG, layer_idx=3, kind=kind).to(torch.bfloat16)
    h = torch.randn(1, 4, CONFIG.hidden_size, dtype=torch.bfloat16)
    mixed = torch.randn(1, 4, CONFIG.hidden_size, dtype=torch.bfloat16)
    assert layer.finish(h, mixed).dtype == residual_dtype
    # and an fp32 stream stays fp32 through any layer (fp32 + bf16 promotes)
    assert layer.finish(h.float(), mixed).dtype == torch.float32
