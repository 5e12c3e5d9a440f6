"""The paired statistics of `evalkit compare`, against hand-computed values and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from evalkit.compare.stats import (
    common_ks,
    compare_counts,
    paired_bootstrap,
    paired_stderr,
    per_problem_pass_at_k,
    sign_flip_p_value,
)
from evalkit.metrics import pass_at_k


def brute_force_p(d: list[float]) -> float:
    """Every one of the 2**P sign assignments (zeros included), counted one by one."""
    observed = abs(sum(d))
    hits = sum(
        abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= observed - 1e-12
        for signs in itertools.product((1, -1), repeat=len(d))
    )
    return hits / 2 ** len(d)


@pytest.mark.parametrize(
    "d",
    [
        [0.25, 0.25, 0.25, -0.25, 0.0],  # a zero difference is left out of the enumeration
        [0.5, -0.25, 0.75, 0.0, 0.0, 0.25, -1.0, 0.5],
        [1 / 3, 1 / 3, -2 / 3, 1 / 6, 1 / 6, 0.5],  # sums that are not exact in binary
        [0.1, 0.2, 0.3, -0.6],  # an exact tie with the observed |sum| = 0
        [0.125] * 12,  # one side on every problem: only the two constant assignments reach it
        list(np.linspace(-0.9, 0.7, 14)),
    ],
)
def test_exact_permutation_p_equals_brute_force(d: list[float]) -> None:
    p, method, permutations = sign_flip_p_value(d)
    assert method == "exact"
    assert p == pytest.approx(brute_force_p(d), abs=1e-12)
    assert permutations == 2 ** sum(x != 0 for x in d)


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        ([0.0] * 30, 1.0),  # identical runs: nothing to permute, p = 1
        ([0.25] * 4 + [-0.25], 12 / 32),  # |sum| >= 3 steps for k in {0, 1, 4, 5} of 5 plus signs
        ([0.25] * 10 + [0.0] * 20, 2 / 1024),  # ten problems all one way
        ([0.5, -0.5], 1.0),  # observed 0: every assignment reaches it
    ],
)
def test_exact_permutation_p_by_hand(d: list[float], expected: float) -> None:
    assert sign_flip_p_value(d)[0] == pytest.approx(expected, abs=1e-15)


def test_monte_carlo_p_is_close_to_exact_and_reproducible() -> None:
    rng = np.random.default_rng(7)
    d = rng.choice([-0.5, -0.25, 0.25, 0.5, 0.75], size=22)
    exact, method, _ = sign_flip_p_value(d, exact_limit=22)
    assert method == "exact"
    p, method, draws = sign_flip_p_value(d, seed=3, n_permutations=20_000)
    assert (method, draws) == ("monte carlo", 20_000)
    # binomial sd of a Monte Carlo p at 20,000 draws is at most 0.0036: four of them
    assert abs(p - exact) < 0.015
    assert sign_flip_p_value(d, seed=3, n_permutations=20_000)[0] == p  # same seed, same p
    assert sign_flip_p_value(d, seed=4, n_permutations=20_000)[0] != p


def test_monte_carlo_p_never_zero() -> None:
    # A ahead on all 30 problems: 2 of 2**30 assignments reach it; no random draw does.
    p, method, draws = sign_flip_p_value([0.25] * 30, seed=0, n_permutations=10_000)
    assert (method, draws) == ("monte carlo", 10_000)
    assert p == 1 / 10_001


def test_paired_stderr_by_hand() -> None:
    d = [0.25, 0.0, 0.5, 0.25]  # mean 0.25, sd (ddof=1) = sqrt(0.125 / 3)
    assert paired_stderr(d) == pytest.approx(100 * math.sqrt(0.125 / 3) / 2)
    assert paired_stderr([0.3]) == 0.0


def _literal_paired_bootstrap(
    a: list[list[bool]], b: list[list[bool]], seed: int, reps: int
) -> tuple[float, float]:
    """The method as written in words, on the verdicts themselves: draw problems (one draw for both
    runs), then draw each run's samples of each drawn problem with replacement."""
    rng = np.random.default_rng(seed)
    a_verdicts, b_verdicts = np.array(a, dtype=float), np.array(b, dtype=float)  # [problems, samples]
    problems, m = a_verdicts.shape
    picks = rng.integers(0, problems, size=(reps, problems))
    a_draw = np.take_along_axis(a_verdicts[picks], rng.integers(0, m, size=(reps, problems, m)), axis=2)
    b_draw = np.take_along_axis(b_verdicts[picks], rng.integers(0, m, size=(reps, problems, m)), axis=2)
    deltas = 100 * (a_draw.mean(axis=2) - b_draw.mean(axis=2)).mean(axis=1)
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    return float(lo), float(hi)


def test_bootstrap_matches_resampling_the_samples_themselves() -> None:
    # 20 problems x 8 samples: means on a grid of 100 / 160 points, finer than the tolerance
    rng = np.random.default_rng(11)
    difficulty = rng.uniform(0, 1, size=20)
    a = (rng.uniform(size=(20, 8)) < difficulty[:, None] + 0.1).tolist()
    b = (rng.uniform(size=(20, 8)) < difficulty[:, None]).tolist()
    counts = [np.array([len(x) for x in a]), np.array([sum(x) for x in a])]
    counts += [np.array([len(x) for x in b]), np.array([sum(x) for x in b])]
    fast = paired_bootstrap(*counts, seed=1, n_bootstrap=20_000)[1]
    literal = _literal_paired_bootstrap(a, b, seed=2, reps=20_000)
    assert fast[0] == pytest.approx(literal[0], abs=1.0)
    assert fast[1] == pytest.approx(literal[1], abs=1.0)
    # Drawing B's problems apart from A's (unpaired, problems only) is far wider: the pairing matters.
    draw = np.random.default_rng(3).integers(0, 20, size=(2, 20_000, 20))
    unpaired = 100 * (
        np.array(a, float)[draw[0]].mean(axis=(1, 2)) - np.array(b, float)[draw[1]].mean(axis=(1, 2))
    )
    unpaired_lo, unpaired_hi = np.percentile(unpaired, [2.5, 97.5])
    assert fast[1] - fast[0] < 0.75 * (unpaired_hi - unpaired_lo)


def _counts(rights_a: list[int], rights_b: list[int], n: int = 4) -> tuple[np.ndarray, ...]:
    size = len(rights_a)
    return np.full(size, n), np.array(rights_a), np.full(size, n), np.array(rights_b)


def test_bootstrap_seed_moves_the_interval_only_a_little() -> None:
    # 7 and 5 samples per problem: a fine grid of means, so percentiles of different draws differ
    a_right, b_right = [7, 5, 3, 2, 1, 0, 6, 4] * 4, [4, 3, 1, 2, 0, 1, 2, 3] * 4
    counts = (np.full(32, 7), np.array(a_right), np.full(32, 5), np.array(b_right))
    intervals = [paired_bootstrap(*counts, seed=s)[1] for s in range(5)]
    assert len(set(intervals)) > 1  # the seed is used
    assert paired_bootstrap(*counts, seed=3)[1] == intervals[3]  # and reproducible
    for lo, hi in intervals:
        assert abs(lo - intervals[0][0]) < 1.0 and abs(hi - intervals[0][1]) < 1.0


def test_identical_runs() -> None:
    counts = _counts([4, 2, 0, 3] * 5, [4, 2, 0, 3] * 5)
    result = compare_counts(*counts, (1, 2, 4))
    for k, r in result.items():
        assert (r.delta, r.stderr, r.p_value, r.nonzero, r.p_method) == (0.0, 0.0, 1.0, 0, "exact"), k
        assert r.ci95[0] <= 0.0 <= r.ci95[1]


def test_one_run_ahead_on_every_problem() -> None:
    counts = _counts([4] * 15 + [3] * 15, [2] * 15 + [1] * 15)
    r = compare_counts(*counts)[1]
    assert r.delta == pytest.approx(50.0)
    assert r.stderr == 0.0  # every difference is exactly 2 of 4
    assert r.p_value == 1 / 10_001 and r.p_method == "monte carlo"
    assert r.ci95[0] > 0


def test_known_delta_stderr_and_pass_at_k_by_hand() -> None:
    # A - B per problem in samples of 4: +2, +1, 0, -1, then 0 on six more problems
    a_right, b_right = [4, 2, 1, 0] + [2] * 6, [2, 1, 1, 1] + [2] * 6
    result = compare_counts(*_counts(a_right, b_right), (1, 2))
    r1 = result[1]
    d = np.array([0.5, 0.25, 0.0, -0.25] + [0.0] * 6)
    assert r1.delta == pytest.approx(5.0)  # (2 + 1 - 1) / 4 / 10 problems
    assert (r1.a, r1.b) == (pytest.approx(47.5), pytest.approx(42.5))  # 19 and 17 of 40 samples
    assert r1.stderr == pytest.approx(100 * d.std(ddof=1) / math.sqrt(10))
    assert r1.p_value == pytest.approx(brute_force_p(list(d)))
    assert r1.nonzero == 3
    p2 = {c: pass_at_k(4, c, 2) for c in range(5)}  # 0, 1/2, 5/6, 1, 1
    d2 = [p2[a] - p2[b] for a, b in zip(a_right, b_right, strict=True)]
    assert result[2].delta == pytest.approx(100 * np.mean(d2))
    assert result[2].p_value == pytest.approx(brute_force_p(d2))


def test_pass_at_k_interval_surrounds_its_estimate_when_n_differ() -> None:
    # 4 of 8 vs 2 of 4 on every problem: pass@2 is 22/28 vs 5/6, a gap of -4.76 points; a bootstrap that
    # applied the estimator to resamples without centring would be centred near 0 and miss it.
    counts = (np.full(30, 8), np.full(30, 4), np.full(30, 4), np.full(30, 2))
    r = compare_counts(*counts, (1, 2))[2]
    assert r.delta == pytest.approx(100 * (22 / 28 - 5 / 6))
    assert r.ci95[0] < r.delta < r.ci95[1]
    assert abs((r.ci95[0] + r.ci95[1]) / 2 - r.delta) < 2.0


def test_per_problem_pass_at_k_is_the_project_estimator() -> None:
    samples, correct = np.array([8, 8, 4, 64]), np.array([0, 3, 4, 10])
    expected = [pass_at_k(int(m), int(c), 4) for m, c in zip(samples, correct, strict=True)]
    assert per_problem_pass_at_k(samples, correct, 4).tolist() == expected


@pytest.mark.parametrize(
    ("n_a", "n_b", "fewest", "ks"),
    [
        (4, 4, 4, (2, 4)),
        (64, 8, 8, (2, 4, 8)),  # pass@16 .. pass@64 exist for A only
        (6, 5, 5, (2, 4, 5)),
        (1, 8, 1, ()),
        (12, 12, 12, (2, 4, 8, 12)),
        (4, 4, 3, (2,)),  # an incomplete problem with 3 samples: no pass@4, and no pass@3 either
    ],
)
def test_common_ks(n_a: int, n_b: int, fewest: int, ks: tuple[int, ...]) -> None:
    assert common_ks(n_a, n_b, np.array([n_a, fewest]), np.array([n_b, n_b])) == ks


@pytest.mark.parametrize(
    ("counts", "ks", "message"),
    [
        ((np.array([]), np.array([]), np.array([]), np.array([])), (1,), "no problems"),
        ((np.array([4]), np.array([1]), np.array([0]), np.array([0])), (1,), "at least one sample"),
        ((np.array([4]), np.array([1]), np.array([2]), np.array([0])), (1, 4), "pass@4 needs"),
    ],
)
def test_bad_counts(counts: tuple, ks: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_counts(*counts, ks)
