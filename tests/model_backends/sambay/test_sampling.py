"""The sampler: counter-based uniforms, the tie-inclusive top-p set, the drawn distribution (renormalised,
vocabulary-order inverse CDF), batch independence."""

from __future__ import annotations

import pytest
import torch

from model_backends.sambay.engine.sampler import as_int64, sample, uniform
from model_backends.sambay.ops.top_p import top_p_sample

MASK = (1 << 64) - 1


def splitmix64_uniform(seed: int, step: int) -> float:
    """Pure-Python splitmix64 on unsigned 64-bit ints: the reference the int64 tensor version must match."""
    z = (seed + (step + 1) * 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    z ^= z >> 31
    return (z >> 11) / 2**53


@pytest.mark.parametrize(
    "seed, step",
    [(0, 0), (1, 0), (1, 1), (2**62 + 12345, 7), ((1 << 63) - 1, 32767), (-5, 3), (2**64 - 1, 0)],
)
def test_uniform_matches_splitmix64_reference(seed, step):
    got = uniform(torch.tensor([as_int64(seed)]), torch.tensor([step])).item()
    assert got == splitmix64_uniform(seed & MASK, step)
    assert 0.0 <= got < 1.0


def test_uniform_is_elementwise():
    seeds = torch.arange(100, dtype=torch.long) * 7919
    steps = torch.arange(100, dtype=torch.long) % 13
    whole = uniform(seeds, steps)
    parts = torch.cat([uniform(seeds[i : i + 1], steps[i : i + 1]) for i in range(100)])
    assert torch.equal(whole, parts)
    assert len(set(whole.tolist())) == 100


def nucleus(probs: list[float], top_p: float) -> set[int]:
    """The top-p set by its definition: token i is kept iff the mass of the tokens strictly more
    probable than i is < top_p (ties together; top_p >= 1 keeps every token)."""
    if top_p >= 1:
        return set(range(len(probs)))
    return {i for i, p in enumerate(probs) if sum(q for q in probs if q > p) < top_p}


# (probabilities, top_p, the kept token ids). No case puts top_p exactly on a mass: the probabilities
# go through fp32 logits and softmax, so an exact tie with top_p would be decided by rounding.
TOP_P_CASES = [
    ([0.5, 0.3, 0.15, 0.05], 0.79, {0, 1}),
    ([0.5, 0.3, 0.15, 0.05], 0.81, {0, 1, 2}),  # the token whose mass crosses top_p is kept
    ([0.5, 0.3, 0.15, 0.05], 0.49, {0}),
    ([0.5, 0.3, 0.15, 0.05], 0.51, {0, 1}),
    ([0.5, 0.3, 0.15, 0.05], 1.0, {0, 1, 2, 3}),
    ([0.05, 0.15, 0.3, 0.5], 0.94, {1, 2, 3}),  # order in the vocabulary does not matter
    ([0.9, 0.05, 0.05], 0.01, {0}),
    ([0.4, 0.2, 0.2, 0.2], 0.5, {0, 1, 2, 3}),  # tie-inclusive: a sorted prefix would keep one 0.2
    ([0.4, 0.2, 0.2, 0.2], 0.39, {0}),
    ([0.25, 0.25, 0.25, 0.25], 0.1, {0, 1, 2, 3}),  # all tied: nothing is strictly more probable
    ([0.1, 0.3, 0.3, 0.3], 0.5, {1, 2, 3}),
]


def _logits(probs: list[float]) -> torch.Tensor:
    return torch.tensor([probs], dtype=torch.float64).log().float()


@pytest.mark.parametrize("probs, top_p, kept", TOP_P_CASES)
def test_top_p_draws_exactly_the_tie_inclusive_nucleus(probs, top_p, kept):
    assert nucleus(probs, top_p) == kept
    draws = 4000
    tokens = sample(
        _logits(probs).expand(draws, -1),
        torch.ones(draws),
        torch.full((draws,), top_p),
        torch.arange(draws, dtype=torch.long),
        torch.zeros(draws, dtype=torch.long),
    )
    assert set(tokens.tolist()) == kept


# Chi-square critical values at p = 0.001 (df = kept tokens - 1): a fixed-seed test, so not flaky; a
# wrong renormalisation (e.g. not renormalised, or top-p on unsorted probs) gives statistics in the 1000s.
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52}


@pytest.mark.parametrize(
    "logits, temperature, top_p",
    [
        ([2.0, 1.5, 1.0, 0.0, -1.0, -3.0], 1.0, 0.9),
        ([2.0, 1.5, 1.0, 0.0, -1.0, -3.0], 0.6, 0.95),
        ([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], 1.0, 0.5),
        ([1.0, 1.0, 1.0, -9.0, -9.0, -9.0], 1.0, 0.95),
        ([1.0, 1.0, 1.0, -9.0, -9.0, -9.0], 1.0, 0.5),  # the three ties are kept together
        ([-1.0, 0.5, -1.0, 0.5, -1.0, 0.5], 0.8, 0.6),
    ],
)
def test_draws_follow_renormalised_top_p_distribution(logits, temperature, top_p):
    draws = 20000
    row = torch.tensor([logits])
    probs = torch.softmax(row.double() / temperature, dim=-1)[0].tolist()
    kept = {t: probs[t] for t in nucleus(probs, top_p)}
    mass = sum(kept.values())

    tokens = sample(
        row.expand(draws, -1),
        torch.full((draws,), temperature),
        torch.full((draws,), top_p),
        torch.arange(draws, dtype=torch.long) * 1_000_003 + 17,
        torch.zeros(draws, dtype=torch.long),
    )
    counts = torch.bincount(tokens, minlength=len(logits)).tolist()
    outside = {t: c for t, c in enumerate(counts) if t not in kept and c}
    assert not outside, f"tokens outside the top-p set were drawn: {outside}"
    chi2 = sum((counts[t] - draws * p / mass) ** 2 / (draws * p / mass) for t, p in kept.items())
    if len(kept) > 1:
        assert chi2 < CHI2_999[len(kept) - 1], (chi2, counts, kept)
    else:
        assert counts[next(iter(kept))] == draws


def test_draw_is_the_inverse_cdf_in_vocabulary_order():
    """token = the first id whose running kept mass exceeds u * kept_mass, ids in vocabulary order."""
    probs = [0.1, 0.4, 0.2, 0.3]
    n = 500
    seeds, steps = torch.arange(n, dtype=torch.long) * 7 + 3, torch.zeros(n, dtype=torch.long)
    tokens = sample(_logits(probs).expand(n, -1), torch.ones(n), torch.ones(n), seeds, steps)
    cdf = torch.cumsum(torch.tensor(probs, dtype=torch.float64), 0)
    assert torch.equal(tokens, torch.searchsorted(cdf, uniform(seeds, steps), right=True))
    # the nucleus of top_p 0.45 is {1, 3} (0.4 and 0.3), in id order: 1 while u * 0.7 < 0.4, else 3
    tokens = sample(_logits(probs).expand(n, -1), torch.ones(n), torch.full((n,), 0.45), seeds, steps)
    assert torch.equal(tokens, torch.where(uniform(seeds, steps) * 0.7 < 0.4, 1, 3))


def test_sample_is_top_p_sample_of_the_seeded_uniform():
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(12, 400, generator=gen).to(torch.bfloat16)
    temperature, top_p = torch.rand(12, generator=gen) + 0.3, torch.rand(12, generator=gen)
    seeds, steps = torch.randint(0, 2**62, (12,), generator=gen), torch.randint(0, 999, (12,), generator=gen)
    want = top_p_sample(logits, temperature, top_p, uniform(seeds, steps))
    assert torch.equal(sample(logits, temperature, top_p, seeds, steps), want)


def test_temperature_zero_is_argmax_per_row():
    logits = torch.randn(8, 50, generator=torch.Generator().manual_seed(1))
    tokens = sample(
        logits, torch.zeros(8), torch.full((8,), 0.95), torch.arange(8), torch.zeros(8, dtype=torch.long)
    )
    assert torch.equal(tokens, logits.argmax(dim=-1))


def test_row_result_independent_of_batch_and_position():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(16, 300, generator=gen)
    temperature = torch.tensor([0.0, 0.6, 1.0, 1.3] * 4)
    top_p = torch.tensor([0.95, 0.95, 0.5, 1.0] * 4)
    seeds = torch.randint(0, 2**62, (16,), generator=gen)
    steps = torch.randint(0, 30000, (16,), generator=gen)
    batch = sample(logits, temperature, top_p, seeds, steps)
    perm = torch.randperm(16, generator=gen)
    shuffled = sample(logits[perm], temperature[perm], top_p[perm], seeds[perm], steps[perm])
    alone = torch.cat(
        [
            sample(
                logits[i : i + 1],
                temperature[i : i + 1],
                top_p[i : i + 1],
                seeds[i : i + 1],
                steps[i : i + 1],
            )
            for i in range(16)
        ]
    )
    assert torch.equal(batch[perm], shuffled)
    assert torch.equal(batch, alone)


def test_seed_and_step_change_the_draw():
    logits = torch.zeros(64, 1000)  # uniform distribution: draws are the uniforms' quantiles
    ones = torch.ones(64)
    by_seed = sample(logits, ones, ones, torch.arange(64), torch.zeros(64, dtype=torch.long))
    by_step = sample(logits, ones, ones, torch.zeros(64, dtype=torch.long), torch.arange(64))
    assert len(set(by_seed.tolist())) > 50
    assert len(set(by_step.tolist())) > 50
