"""Config parsing, the layer schedule and sizes of the published model (sambay.md 1-3, 5.3)."""

from __future__ import annotations

import pytest
import torch

from model_backends.sambay.errors import ConfigError
from model_backends.sambay.model import SambaYForCausalLM
from model_backends.sambay.model.config import PUBLISHED_CONFIG, SambaYConfig, lambda_init, layer_plan
from model_backends.sambay.model.state import StatePool
from model_backends.sambay.testing import tiny_config

# sambay.md section 2, written out row by row.
PUBLISHED_PLAN = ["mamba", "swa_attn"] * 8 + ["mamba_memory", "full_attn"] + ["gmu", "cross_attn"] * 7


def test_published_layer_plan_matches_the_32_layer_table():
    plan = layer_plan(SambaYConfig.published())
    assert list(plan) == PUBLISHED_PLAN
    assert plan[16] == "mamba_memory" and plan[17] == "full_attn"
    assert (plan.count("mamba"), plan.count("swa_attn"), plan.count("gmu"), plan.count("cross_attn")) == (
        8,
        8,
        7,
        7,
    )


def test_published_derived_values():
    config = SambaYConfig.published()
    assert (config.head_dim, config.d_inner, config.mamba_dt_rank) == (64, 5120, 160)
    assert (config.mamba_d_state, config.mamba_d_conv, config.sliding_window) == (16, 4, 512)


def test_published_parameter_count_on_meta():
    model = SambaYForCausalLM(SambaYConfig.published(), dtype=torch.bfloat16, device="meta")
    assert model.num_parameters() == 3_852_562_944
    # A_log, D and lambda vectors are fp32 even in a bf16 model (sambay.md 3).
    fp32 = {name.rsplit(".", 1)[-1] for name, p in model.named_parameters() if p.dtype == torch.float32}
    assert fp32 == {"A_log", "D", "lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"}


def test_tiny_config_covers_every_layer_type():
    assert set(layer_plan(SambaYConfig.from_dict(tiny_config()))) == set(PUBLISHED_PLAN)
    assert layer_plan(SambaYConfig.from_dict(tiny_config(num_hidden_layers=12)))[6:8] == (
        "mamba_memory",
        "full_attn",
    )


@pytest.mark.parametrize(
    "sliding_window",
    [
        512,  # newer scalar form
        [512 if (i % 2 == 1 and i < 16) else None for i in range(32)],  # original per-layer list
    ],
    ids=["scalar", "per-layer-list"],
)
def test_both_sliding_window_forms(sliding_window):
    config = SambaYConfig.from_dict({**PUBLISHED_CONFIG, "sliding_window": sliding_window})
    assert config.sliding_window == 512


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_hidden_layers": 6}, "multiple of 4"),
        ({"num_hidden_layers": 10}, "multiple of 4"),
        ({"num_attention_heads": 5, "num_key_value_heads": 5, "hidden_size": 40}, "even"),
        ({"sliding_window": [8, None, 8]}, "per-layer sliding_window"),
        ({"mb_per_layer": 3}, "mb_per_layer"),
    ],
)
def test_bad_configs_raise_clear_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        SambaYConfig.from_dict(tiny_config(**overrides))


@pytest.mark.parametrize(
    ("layer_idx", "expected"),
    [
        (1, 0.355509),
        (3, 0.556058),
        (5, 0.666122),
        (7, 0.726526),
        (9, 0.759677),
        (11, 0.777870),
        (13, 0.787855),
        (15, 0.793335),
        (17, 0.796342),
        (19, 0.797992),
        (25, 0.799668),
        (31, 0.799945),
    ],
)
def test_lambda_init_table(layer_idx, expected):
    assert lambda_init(layer_idx) == pytest.approx(expected, abs=1e-6)


# sambay.md 5.3 for the published model in bf16 (the SSM state kept in fp32, state.py): 9 Mamba layers
# x 5120 channels x (conv 4 x 2 B + SSM 16 x 4 B), 20 MiB of SWA rings once full, 5,120 B per token.
MAMBA_BYTES, SWA_BYTES, FULL_BYTES_PER_TOKEN = 3_317_760, 20_971_520, 5_120


@pytest.mark.parametrize("max_seq_len", [1, 511, 512, 2048, 32768])
def test_state_bytes_of_published_model(max_seq_len):
    config = SambaYConfig.published()
    ring_rows = min(512, max_seq_len)  # the ring holds min(window, max_seq_len) rows
    swa = SWA_BYTES * ring_rows // 512
    want = MAMBA_BYTES + swa + FULL_BYTES_PER_TOKEN * max_seq_len
    assert StatePool.bytes_per_slot(config, max_seq_len, torch.bfloat16) == want


def test_published_context_comes_from_config_json():
    assert SambaYConfig.published().max_position_embeddings == 262144  # what config.json carries
    assert SambaYConfig.from_dict(tiny_config()).max_position_embeddings is None  # not declared
    assert SambaYConfig.from_dict(tiny_config(max_position_embeddings=300)).max_position_embeddings == 300
    with pytest.raises(ConfigError, match="max_position_embeddings=0 must be a positive integer"):
        SambaYConfig.from_dict(tiny_config(max_position_embeddings=0))
