"""Paired statistics for two runs on the same problems: pure functions over per-problem counts.

Every function works on aligned arrays, one entry per problem i (the same problem in both runs):
    a_samples[i], a_correct[i]   run A's number of scored samples of problem i and how many were correct
    b_samples[i], b_correct[i]   the same for run B
The per-problem value of a metric is Pass@1 = correct / samples, or the unbiased pass@k estimator of
`evalkit.metrics.pass_at_k`; d[i] = value_A[i] - value_B[i]. Results are in points (x100).

Problems, not samples, are the unit: samples of one problem share its difficulty, so treating every
sample as independent (as a binomial interval over all samples does) makes intervals too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evalkit.metrics import pass_at_k

EXACT_LIMIT = 20  # up to 2**20 sign assignments are enumerated; more nonzero differences -> Monte Carlo
DEFAULT_BOOTSTRAP = 10_000
DEFAULT_PERMUTATIONS = 10_000
_CHUNK = 2_000  # bootstrap / Monte Carlo draws per block: bounded memory on 500-problem tasks


@dataclass(frozen=True)
class PairedResult:
    """One metric compared: means, the paired difference and its uncertainty, all in points."""

    a: float  # mean over problems of A's per-problem value
    b: float
    delta: float  # a - b
    stderr: float  # standard error over problems of the per-problem differences
    ci95: tuple[float, float]  # paired two-level bootstrap percentile interval of delta
    p_value: float  # two-sided paired permutation (sign-flip) test over problems
    p_method: str  # "exact" | "monte carlo"
    permutations: int  # sign assignments counted: 2**nonzero (exact) or the Monte Carlo draws
    nonzero: int  # problems whose difference is not zero (the only ones a sign flip changes)


def per_problem_pass_at_k(samples: np.ndarray, correct: np.ndarray, k: int) -> np.ndarray:
    """pass@k of each problem with the project's estimator (`metrics.pass_at_k`); needs k <= samples[i].

    Kept here rather than in metrics.py while that file is being reorganised; it only loops over it.
    """
    return np.array(
        [pass_at_k(int(m), int(c), k) for m, c in zip(samples, correct, strict=True)], dtype=float
    )


def _value_table(samples: np.ndarray, correct: np.ndarray, k: int) -> np.ndarray:
    """table[i, j] = the bootstrap value of problem i when j of its resampled samples are correct.

    Pass@1 (k = 1) is j / m. For pass@k it is the estimator at j plus a per-problem shift: the unbiased
    estimator applied to a resample drawn with replacement is centred on the plug-in 1 - (1 - c/m)^k,
    not on the estimate itself, so without the shift the interval would sit beside the estimate (by up to
    several points at n = 4). The shift makes each problem's inner draws average exactly its estimate.
    The bootstrap looks its draws up here, so the estimator runs once per (m, j), not once per draw.
    """
    from math import comb

    width = int(samples.max()) + 1
    table = np.zeros((len(samples), width), dtype=float)
    by_size: dict[int, np.ndarray] = {}
    for i, (m, c) in enumerate(zip(samples.tolist(), correct.tolist(), strict=True)):
        if m not in by_size:
            by_size[m] = np.array([j / m if k == 1 else pass_at_k(m, j, k) for j in range(m + 1)])
        values = by_size[m]
        shift = 0.0
        if k > 1:
            rate = c / m
            pmf = np.array([comb(m, j) * rate**j * (1 - rate) ** (m - j) for j in range(m + 1)])
            shift = values[c] - float(pmf @ values)
        table[i, : m + 1] = values + shift
    return table


def paired_stderr(d: np.ndarray) -> float:
    """sd(d, ddof=1) / sqrt(P) x100: the standard error of the mean paired difference (0 for P < 2)."""
    d = np.asarray(d, dtype=float)
    return float(d.std(ddof=1) / np.sqrt(len(d)) * 100) if len(d) > 1 else 0.0


def paired_bootstrap(
    a_samples: np.ndarray,
    a_correct: np.ndarray,
    b_samples: np.ndarray,
    b_correct: np.ndarray,
    ks: tuple[int, ...] = (1,),
    *,
    seed: int = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
) -> dict[int, tuple[float, float]]:
    """95% percentile intervals of delta (points) for each k, from one paired two-level bootstrap.

    Each replicate draws P problems with replacement, the SAME draw for both runs (that is the pairing),
    then, within each drawn problem, resamples each run's own samples with replacement. Resampling m
    samples of which c are correct gives a Binomial(m, c/m) count of correct ones, so the inner level is
    drawn as that binomial, independently for A and B (their samples are independent given the problem).
    Every metric is evaluated on the same replicates; pass@k applies the unbiased estimator to the
    resampled count, centred per problem (see `_value_table`). Seeded: the same inputs and seed give
    the same intervals.
    """
    a_samples, b_samples = np.asarray(a_samples, dtype=int), np.asarray(b_samples, dtype=int)
    a_rate, b_rate = np.asarray(a_correct) / a_samples, np.asarray(b_correct) / b_samples
    problems = len(a_samples)
    a_correct, b_correct = np.asarray(a_correct, dtype=int), np.asarray(b_correct, dtype=int)
    tables = {k: (_value_table(a_samples, a_correct, k), _value_table(b_samples, b_correct, k)) for k in ks}
    rng = np.random.default_rng([seed, 0])
    deltas: dict[int, list[np.ndarray]] = {k: [] for k in ks}
    for start in range(0, n_bootstrap, _CHUNK):
        size = min(_CHUNK, n_bootstrap - start)
        picks = rng.integers(0, problems, size=(size, problems))
        a_draw = rng.binomial(a_samples[picks], a_rate[picks])
        b_draw = rng.binomial(b_samples[picks], b_rate[picks])
        for k, (a_table, b_table) in tables.items():
            diff = a_table[picks, a_draw] - b_table[picks, b_draw]
            deltas[k].append(diff.mean(axis=1) * 100)
    out = {}
    for k in ks:
        lo, hi = np.percentile(np.concatenate(deltas[k]), [2.5, 97.5])
        out[k] = (float(lo), float(hi))
    return out


def nonzero_differences(d: np.ndarray) -> np.ndarray:
    """The entries of d that are not zero (up to rounding relative to sum |d|): the ones a flip changes."""
    d = np.asarray(d, dtype=float)
    return d[np.abs(d) > 1e-12 * max(1.0, float(np.abs(d).sum()))]


def _sign_matrix(count: int) -> np.ndarray:
    """All 2**count vectors of +-1, one per row (row r has sign -1 where bit j of r is set)."""
    rows = np.arange(1 << count)[:, None]
    return 1 - 2 * ((rows >> np.arange(count)) & 1)


def sign_flip_p_value(
    d: np.ndarray,
    *,
    seed: int = 0,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    exact_limit: int = EXACT_LIMIT,
) -> tuple[float, str, int]:
    """(p, method, permutations): two-sided paired permutation test of mean(d) = 0.

    Under the null hypothesis A and B are exchangeable within each problem, so swapping the runs on a
    problem flips the sign of d[i]. The statistic is |sum(d)|; p is the share of sign assignments whose
    |sum(s * d)| is at least the observed one. Zero differences do not change under a flip, so only the
    m nonzero ones are permuted: with m <= exact_limit all 2**m assignments are enumerated (exact p,
    the observed assignment included); otherwise `n_permutations` random assignments are drawn (seeded)
    and p = (1 + hits) / (1 + n_permutations), which never reports 0 and is a valid p-value.
    Each d[i] already carries its problem's sampling noise, so the test needs no inner level. With the
    same n in both runs the null distribution of d[i] is symmetric and the test is exact; with different
    n it is approximately so.
    """
    scale = float(np.abs(np.asarray(d, dtype=float)).sum())
    nonzero = nonzero_differences(d)
    observed = abs(float(nonzero.sum()))
    # Sums of the same numbers in another order may differ in the last bits: count near-ties as ties.
    threshold = observed - 1e-9 * max(1.0, scale)
    m = len(nonzero)
    if m <= exact_limit:
        # Meet in the middle: every total is one sum over the first half plus one over the second.
        half = m // 2
        first = _sign_matrix(half) @ nonzero[:half]
        second = _sign_matrix(m - half) @ nonzero[half:]
        hits = int((np.abs(first[:, None] + second[None, :]) >= threshold).sum())
        return hits / float(1 << m), "exact", 1 << m
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
    rng = np.random.default_rng([seed, 1])
    hits = 0
    for start in range(0, n_permutations, _CHUNK):
        size = min(_CHUNK, n_permutations - start)
        signs = 1 - 2 * rng.integers(0, 2, size=(size, m))
        hits += int((np.abs(signs @ nonzero) >= threshold).sum())
    return (hits + 1) / (n_permutations + 1), "monte carlo", n_permutations


def common_ks(n_a: int, n_b: int, a_samples: np.ndarray, b_samples: np.ndarray) -> tuple[int, ...]:
    """The k >= 2 of pass@k both runs allow: `metrics.k_values` of the smaller n (powers of two and n
    itself), kept only where every problem of both runs has at least k scored samples."""
    from evalkit.metrics import k_values

    smallest = int(min(np.min(a_samples), np.min(b_samples)))
    return tuple(k for k in k_values(min(n_a, n_b)) if 2 <= k <= smallest)


def compare_counts(
    a_samples: np.ndarray,
    a_correct: np.ndarray,
    b_samples: np.ndarray,
    b_correct: np.ndarray,
    ks: tuple[int, ...] = (1,),
    *,
    seed: int = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    exact_limit: int = EXACT_LIMIT,
) -> dict[int, PairedResult]:
    """k -> PairedResult for Pass@1 (k = 1) and pass@k (k >= 2), every problem in both runs."""
    arrays = [np.asarray(x, dtype=int) for x in (a_samples, a_correct, b_samples, b_correct)]
    a_samples, a_correct, b_samples, b_correct = arrays
    if len(a_samples) == 0:
        raise ValueError("no problems to compare")
    if not (len(a_samples) == len(a_correct) == len(b_samples) == len(b_correct)):
        raise ValueError("the four count arrays must have one entry per problem")
    if (a_samples < 1).any() or (b_samples < 1).any():
        raise ValueError("every problem needs at least one sample in both runs")
    if max(ks) > min(a_samples.min(), b_samples.min()):
        raise ValueError(f"pass@{max(ks)} needs at least {max(ks)} samples of every problem in both runs")
    intervals = paired_bootstrap(
        a_samples, a_correct, b_samples, b_correct, ks, seed=seed, n_bootstrap=n_bootstrap
    )
    out = {}
    for k in ks:
        if k == 1:
            a_values, b_values = a_correct / a_samples, b_correct / b_samples
        else:
            a_values = per_problem_pass_at_k(a_samples, a_correct, k)
            b_values = per_problem_pass_at_k(b_samples, b_correct, k)
        d = a_values - b_values
        p, method, permutations = sign_flip_p_value(
            d, seed=seed, n_permutations=n_permutations, exact_limit=exact_limit
        )
        out[k] = PairedResult(
            a=float(a_values.mean() * 100),
            b=float(b_values.mean() * 100),
            delta=float(d.mean() * 100),
            stderr=paired_stderr(d),
            ci95=intervals[k],
            p_value=float(p),
            p_method=method,
            permutations=permutations,
            nonzero=len(nonzero_differences(d)),
        )
    return out
