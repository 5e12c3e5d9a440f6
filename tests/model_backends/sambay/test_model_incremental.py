"""Incremental decoding (prefill + decode against a StatePool) equals the full causal forward.

Tiny random checkpoints cover every layer type; the window is 8 and sequences run to 21 tokens, so the
SWA rings wrap both during prefill and during decode.
"""

from __future__ import annotations

import pytest
import torch

from model_backends.sambay.errors import RequestError

from .conftest import TINY_CASES

T_TOTAL = 21
# Per-dtype tolerance on logits, relative to the largest logit of the position.
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 2e-2}


def _tokens(seed: int, length: int) -> torch.Tensor:
    return torch.randint(5, 512, (length,), generator=torch.Generator().manual_seed(seed))


def _assert_logits_close(got: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    assert not got.isnan().any()
    scale = expected.abs().amax(-1, keepdim=True)
    worst = ((got - expected).abs() / scale).max().item()
    assert worst <= TOLERANCE[dtype], f"max relative error {worst:.2e} > {TOLERANCE[dtype]:.0e}"


def _incremental(model, tokens: torch.Tensor, prompt_len: int, slot: int = 1) -> torch.Tensor:
    pool = model.new_state_pool(num_slots=3, max_seq_len=32)
    steps = [model.prefill([tokens[:prompt_len]], torch.tensor([slot]), pool)[0]]
    for t in range(prompt_len, len(tokens)):
        steps.append(model.decode(tokens[t : t + 1], torch.tensor([slot]), pool)[0])
    assert pool.seq_lens[slot] == len(tokens)
    return torch.stack(steps)


@pytest.mark.parametrize("prompt_len", [3, 13], ids=["P3", "P13-past-window"])
@pytest.mark.parametrize("case", list(TINY_CASES), ids=list(TINY_CASES))
def test_prefill_then_decode_equals_full_forward_fp32(tiny_model, case, prompt_len):
    model = tiny_model(**TINY_CASES[case])
    tokens = _tokens(len(case), T_TOTAL)
    full = model(tokens[None])[0]
    _assert_logits_close(_incremental(model, tokens, prompt_len), full[prompt_len - 1 :], torch.float32)


@pytest.mark.parametrize("case", ["L8-H8-KV4-s1", "L12-H4-KV2-s2"])
def test_prefill_then_decode_equals_full_forward_bf16(tiny_model, case):
    model = tiny_model(dtype=torch.bfloat16, **TINY_CASES[case])
    tokens = _tokens(3, T_TOTAL)
    full = model(tokens[None])[0]
    _assert_logits_close(_incremental(model, tokens, 6), full[5:], torch.bfloat16)
    # and bf16 stays near the fp32 model (the fp32 residual stream keeps the drift small)
    full32 = tiny_model(**TINY_CASES[case])(tokens[None])[0]
    rms = (full - full32).pow(2).mean().sqrt() / full32.pow(2).mean().sqrt()
    assert rms < 5e-2


def test_full_forward_is_causal(tiny_model):
    model = tiny_model(seed=0)
    tokens = _tokens(1, 12)
    changed = tokens.clone()
    changed[8] = (changed[8] + 1) % 512
    a, b = model(tokens[None])[0], model(changed[None])[0]
    torch.testing.assert_close(a[:8], b[:8])
    assert not torch.allclose(a[8:], b[8:])


def test_batch_of_different_lengths_equals_each_alone(tiny_model):
    model = tiny_model(**TINY_CASES["L8-H8-KV4-s1"])
    prompts = [_tokens(10 + i, n) for i, n in enumerate([4, 11, 1, 7])]
    slots = torch.tensor([3, 0, 2, 1])
    pool = model.new_state_pool(num_slots=4, max_seq_len=32)
    batch_logits = [model.prefill(prompts, slots, pool)]
    next_tokens = torch.stack([_tokens(20 + step, 4) for step in range(5)])  # [steps, B]
    for step in range(5):
        batch_logits.append(model.decode(next_tokens[step], slots, pool))
    assert pool.seq_lens[slots].tolist() == [len(p) + 5 for p in prompts]
    for b, prompt in enumerate(prompts):
        alone = model.new_state_pool(num_slots=1, max_seq_len=32)
        expected = [model.prefill([prompt], torch.tensor([0]), alone)[0]]
        for step in range(5):
            expected.append(model.decode(next_tokens[step, b : b + 1], torch.tensor([0]), alone)[0])
        got = torch.stack([logits[b] for logits in batch_logits])
        _assert_logits_close(got, torch.stack(expected), torch.float32)


def test_forked_slots_decode_identically(tiny_model):
    model = tiny_model(seed=0)
    pool = model.new_state_pool(num_slots=4, max_seq_len=32)
    model.prefill([_tokens(5, 10)], torch.tensor([2]), pool)
    model.decode(torch.tensor([7]), torch.tensor([2]), pool)
    pool.copy_(2, [0, 3])
    assert pool.seq_lens.tolist() == [11, 0, 11, 11]
    for token in (9, 30, 31):
        logits = model.decode(torch.tensor([token] * 3), torch.tensor([0, 2, 3]), pool)
        torch.testing.assert_close(logits[0], logits[1], rtol=0, atol=0)
        torch.testing.assert_close(logits[2], logits[1], rtol=0, atol=0)
    # forks then diverge: different tokens give different logits
    logits = model.decode(torch.tensor([9, 10]), torch.tensor([0, 3]), pool)
    assert not torch.allclose(logits[0], logits[1])


def test_fork_of_the_filled_rows_decodes_like_a_whole_copy(tiny_model):
    model = tiny_model(seed=0)
    pool = model.new_state_pool(num_slots=3, max_seq_len=32)
    pool.full_k[1].normal_()  # stale keys of an earlier occupant beyond the fork's rows
    pool.full_v[1].normal_()
    model.prefill([_tokens(5, 10)], torch.tensor([0]), pool)
    pool.copy_(0, [2])
    pool.copy_(0, [1], length=10)
    assert not torch.equal(pool.full_k[1], pool.full_k[2])  # rows 10.. differ, and must not matter
    for token in (9, 30, 31, 4):
        logits = model.decode(torch.tensor([token] * 2), torch.tensor([1, 2]), pool)
        torch.testing.assert_close(logits[0], logits[1], rtol=0, atol=0)
    with pytest.raises(ValueError, match="length"):
        pool.copy_(0, [1], length=33)


def test_decode_does_not_depend_on_batch_companions(tiny_model):
    model = tiny_model(seed=0)
    pool = model.new_state_pool(num_slots=3, max_seq_len=32)
    model.prefill([_tokens(1, 9), _tokens(2, 3), _tokens(3, 14)], torch.tensor([0, 1, 2]), pool)
    pool.copy_(0, [1])  # slot 1 becomes a twin of slot 0 so we can run slot 0's step twice
    alone = model.decode(torch.tensor([17]), torch.tensor([0]), pool)
    crowd = model.decode(torch.tensor([40, 17]), torch.tensor([2, 1]), pool)
    _assert_logits_close(crowd[1], alone[0], torch.float32)


def test_reset_and_pool_sizes(tiny_model):
    from model_backends.sambay.model.state import StatePool

    model = tiny_model(seed=0)
    pool = model.new_state_pool(num_slots=3, max_seq_len=6)  # max_seq_len < window: ring of 6 rows
    assert pool.nbytes() == 3 * StatePool.bytes_per_slot(model.config, 6, torch.float32)
    tokens = _tokens(4, 6)
    full = model(tokens[None])[0]
    logits = model.prefill([tokens[:2]], torch.tensor([1]), pool)
    for t in range(2, 6):
        logits = model.decode(tokens[t : t + 1], torch.tensor([1]), pool)
    _assert_logits_close(logits[0], full[-1], torch.float32)
    with pytest.raises(RequestError, match="max_seq_len"):
        model.decode(tokens[:1], torch.tensor([1]), pool)
    with pytest.raises(RequestError, match="does not fit"):
        model.prefill([_tokens(4, 7)], torch.tensor([0]), pool)
    pool.reset_([1])
    assert pool.seq_lens[1] == 0
    assert all(t.abs().sum() == 0 for t in pool.slot_state(1).values())
    assert pool.slot_state(1)["swa_k"].shape == (2, 6, 2, 8)  # SWA layers 1 and 3, ring of 6 rows
