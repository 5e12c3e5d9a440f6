"""Bytes a decode step must move, and the bandwidth the device can move them at.

A decode step at batch B is memory bound: it reads every weight once and every sequence's state once.
Its roofline time is bytes / copy bandwidth; achieved fraction = roofline time / measured time.

SambaY per sequence (sambay.md 5.3), with the fused attention kernels (each K/V byte read once per layer):
- Mamba: conv state read + written (model dtype) and SSM state read + written (fp32), 9 layers;
- SWA: min(context, 512) K and V rows read, 8 layers;
- full attention: `context` K and V rows read by layer 17 and by each of the 7 cross layers (8 reads);
- logits: B x V written in fp32 and read back by the sampler.
Phi3 (the same-size transformer): `context` K and V rows read in each of its 32 layers, same logits.
Rows written by the step (one K/V per layer) are negligible and not counted.
"""

from __future__ import annotations

import time

import torch

from benchmarks.engine_bench import sync


def copy_bandwidth(device: str, nbytes: int | None = None, repeats: int = 10) -> float:
    """Measured device-to-device copy bandwidth in bytes/s, counting the read and the write."""
    nbytes = nbytes or (1 << 30 if device.startswith("cuda") else 1 << 28)
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm-up
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * nbytes / best


def weight_bytes(model: torch.nn.Module) -> int:
    """Every parameter once (a tied embedding / LM head is one tensor, read once by the LM head)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def sambay_step_bytes(config, batch: int, context: int, weights: int, state_itemsize: int = 2) -> dict:
    """Bytes one SambaY decode step moves at `batch` sequences of `context` tokens each."""
    from model_backends.sambay.model.config import (
        CROSS_ATTN,
        FULL_ATTN,
        MAMBA,
        MAMBA_MEMORY,
        SWA_ATTN,
        layer_plan,
    )

    plan = layer_plan(config)
    n_mamba = sum(kind in (MAMBA, MAMBA_MEMORY) for kind in plan)
    n_swa = plan.count(SWA_ATTN)
    n_full_readers = plan.count(FULL_ATTN) + plan.count(CROSS_ATTN)
    kv_row = 2 * config.num_key_value_heads * config.head_dim * state_itemsize  # K + V of one token
    mamba = n_mamba * 2 * config.d_inner * (config.mamba_d_conv * state_itemsize + config.mamba_d_state * 4)
    swa = n_swa * min(context, config.sliding_window) * kv_row
    full = n_full_readers * context * kv_row
    logits = 2 * batch * config.vocab_size * 4
    per_sequence = mamba + swa + full
    return {
        "weights": weights,
        "state_per_sequence": per_sequence,
        "mamba_state": batch * mamba,
        "swa_kv": batch * swa,
        "full_kv": batch * full,
        "logits": logits,
        "total": weights + batch * per_sequence + logits,
    }


def phi3_step_bytes(config, batch: int, context: int, weights: int, itemsize: int = 2) -> dict:
    """Bytes one decode step of a Phi3 (Llama-style) transformer moves with a full KV cache."""
    head_dim = config.hidden_size // config.num_attention_heads
    kv = config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim * itemsize * context
    logits = 2 * batch * config.vocab_size * 4
    return {
        "weights": weights,
        "state_per_sequence": kv,
        "full_kv": batch * kv,
        "logits": logits,
        "total": weights + batch * kv + logits,
    }


def achieved(step_bytes: int, seconds: float, bandwidth: float) -> dict:
    """GB/s moved and the fraction of the measured copy bandwidth."""
    rate = step_bytes / seconds
    return {"gb_per_second": round(rate / 1e9, 2), "fraction_of_copy_bandwidth": round(rate / bandwidth, 4)}
