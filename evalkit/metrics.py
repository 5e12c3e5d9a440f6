"""Task metrics from scored samples: Pass@1 with its uncertainty, pass@k, maj@k, rates, breakdowns.

Input rows are scores.jsonl records; the output is the METRICS dict of the results schema (percentages
x100 unless named otherwise). Problems with no sample at all stay in `per_problem` (samples 0) but not in
the means; any missing sample makes the task incomplete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from evalkit.scoring.normalize import canonical_key

BREAKDOWN_FIELDS = ("subject", "level", "domain")
_NO_ANSWER_REASONS = ("no_answer", "truncated_thinking")


def _in_thinking(record: Mapping) -> bool:
    """The answer was read from inside the closed thinking (right or wrong); records scored before
    `source` existed can only say so through a match's reason."""
    return record.get("source") == "thinking" or record.get("reason") == "answer_in_thinking"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), as a stable product."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def k_values(n: int) -> list[int]:
    """Powers of two up to n, and n itself."""
    ks = [1 << i for i in range(n.bit_length()) if 1 << i <= n]
    return ks + ([n] if n not in ks else [])


def _vote_key(record: Mapping, answer_type: str) -> str | None:
    """Samples judged correct all equal the gold, so they vote together; others group by canonical form."""
    if record.get("extracted") is None:
        return None  # no answer never wins a vote
    if record["correct"]:
        return "\x00gold"
    extracted = str(record["extracted"])
    if answer_type != "choice":
        return canonical_key(extracted)
    letter = extracted.strip().upper()
    # GPQA shuffles options per sample: the same letter names different options in different samples.
    # With the sample's permutation (letter index -> original option) wrong votes group by option.
    permutation = record.get("permutation")
    index = ord(letter) - ord("A") if len(letter) == 1 else -1
    if permutation and 0 <= index < len(permutation):
        return f"option {permutation[index]}"
    return letter


def majority_vote(samples: Sequence[Mapping], answer_type: str) -> tuple[float, str | None]:
    """(score, winning answer): score is 1 for a correct winner, 1/m if the gold ties with m-1 others."""
    keys = [_vote_key(s, answer_type) for s in samples]
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return 0.0, None
    top = max(votes.values())
    leaders = [k for k in votes if votes[k] == top]  # Counter keeps first-seen order: deterministic
    score = 1.0 / len(leaders) if "\x00gold" in leaders else 0.0
    winner = next(s["extracted"] for s, k in zip(samples, keys, strict=True) if k == leaders[0])
    return score, winner


def _maj_at_k(samples: Sequence[Mapping], k: int, answer_type: str) -> float:
    """Mean vote score over the consecutive groups of k samples (all samples used, deterministic)."""
    groups = [samples[i : i + k] for i in range(0, len(samples) - k + 1, k)]
    return float(np.mean([majority_vote(g, answer_type)[0] for g in groups])) if groups else 0.0


def _bootstrap_ci(sizes: np.ndarray, accs: np.ndarray, seed: int, n_bootstrap: int) -> list[float]:
    """Two-level bootstrap: resample problems, then samples within each problem.

    Resampling m samples of which a fraction p are correct, with replacement, gives a Binomial(m, p)
    count of correct ones, so the inner level is drawn as that binomial directly.
    """
    if len(sizes) == 0 or n_bootstrap <= 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sizes), size=(n_bootstrap, len(sizes)))
    correct = rng.binomial(sizes[picks], accs[picks])
    means = (correct / sizes[picks]).mean(axis=1) * 100
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [float(lo), float(hi)]


def _group_by_problem(records: Sequence[Mapping], problem_ids: Sequence[str] | None) -> dict[str, list]:
    by_problem: dict[str, dict[int, Mapping]] = {pid: {} for pid in problem_ids or ()}
    for record in records:
        # a re-scored or resumed sample replaces the earlier record of the same index
        by_problem.setdefault(str(record["problem_id"]), {})[int(record["sample_index"])] = record
    return {pid: [s[i] for i in sorted(s)] for pid, s in by_problem.items()}


def _breakdown(per_problem: list[dict], metadata: Mapping[str, Mapping]) -> dict:
    out: dict[str, dict] = {name: {} for name in BREAKDOWN_FIELDS}
    for name in BREAKDOWN_FIELDS:
        groups: dict[str, list[float]] = {}
        for row in per_problem:
            value = metadata.get(row["id"], {}).get(name)
            if value is not None and row["samples"]:
                groups.setdefault(str(value), []).append(row["accuracy"])
        out[name] = {
            key: {"pass_at_1": float(np.mean(accs)) * 100, "num_problems": len(accs)}
            for key, accs in sorted(groups.items())
        }
    return out


def compute_metrics(
    records: Sequence[Mapping],
    *,
    task: str,
    n: int,
    problem_metadata: Mapping[str, Mapping] | None = None,
    problem_ids: Sequence[str] | None = None,
    seed: int = 0,
    n_bootstrap: int = 2000,
    answer_type: str = "math",
) -> dict:
    """The METRICS dict of the results schema for one task's scored samples."""
    by_problem = _group_by_problem(records, problem_ids)
    all_samples = [s for samples in by_problem.values() for s in samples]
    missing = sum(max(0, n - len(samples)) for samples in by_problem.values())

    per_problem = []
    for pid, samples in by_problem.items():
        correct = sum(bool(s["correct"]) for s in samples)
        tokens = [s.get("num_generated_tokens") or 0 for s in samples]
        per_problem.append(
            {
                "id": pid,
                "samples": len(samples),
                "correct": correct,
                "accuracy": correct / len(samples) if samples else 0.0,
                "mean_tokens": float(np.mean(tokens)) if tokens else 0.0,
                "majority_answer": majority_vote(samples, answer_type)[1],
            }
        )
        if answer_type != "choice" and samples and all(s.get("official") is not None for s in samples):
            per_problem[-1]["official_correct"] = sum(bool(s["official"]) for s in samples)
    scored = [row for row in per_problem if row["samples"]]
    accs = np.array([row["accuracy"] for row in scored], dtype=float)
    sizes = np.array([row["samples"] for row in scored], dtype=int)
    P = len(scored)

    pass_k, maj_k = {}, {}
    for k in k_values(n):
        values = [pass_at_k(row["samples"], row["correct"], min(k, row["samples"])) for row in scored]
        pass_k[str(k)] = float(np.mean(values)) * 100 if values else 0.0
        majs = [_maj_at_k(by_problem[row["id"]], min(k, row["samples"]), answer_type) for row in scored]
        maj_k[str(k)] = float(np.mean(majs)) * 100 if majs else 0.0

    official = _official(by_problem, n, answer_type, seed, n_bootstrap)
    total = len(all_samples)
    tokens = np.array([s.get("num_generated_tokens") or 0 for s in all_samples], dtype=float)
    return {
        "task": task,
        "n": n,
        "num_problems": len(by_problem),
        "complete": missing == 0 and total > 0,
        "missing_samples": missing,
        "pass_at_1": float(accs.mean()) * 100 if P else 0.0,
        "stderr": float(accs.std(ddof=1) / np.sqrt(P)) * 100 if P > 1 else 0.0,
        "ci95": _bootstrap_ci(sizes, accs, seed, n_bootstrap),
        "pass_at_k": pass_k,
        "maj_at_k": maj_k,
        "truncation_rate": _rate(all_samples, lambda s: s.get("finish_reason") == "length"),
        "no_answer_rate": _rate(all_samples, lambda s: s.get("reason") in _NO_ANSWER_REASONS),
        "answer_in_thinking_rate": _rate(all_samples, _in_thinking),
        "official": official,
        "timeouts": sum(s.get("reason") == "timeout" for s in all_samples),
        "tokens": {
            "mean": float(tokens.mean()) if total else 0.0,
            "median": float(np.median(tokens)) if total else 0.0,
            "p95": float(np.percentile(tokens, 95)) if total else 0.0,
            "max": float(tokens.max()) if total else 0.0,
        },
        "breakdown": _breakdown(per_problem, problem_metadata or {}),
        "per_problem": per_problem,
    }


def _official(
    by_problem: Mapping[str, Sequence[Mapping]], n: int, answer_type: str, seed: int, n_bootstrap: int
) -> dict | None:
    """Pass@1 (and its stderr, CI and pass@k) under the official judgement stored beside ours
    (scores.jsonl `official`), from the same per-problem counts as ours; None when any scored sample
    lacks it (choice tasks have none; folders scored before it was stored: `evalkit score` fills it in).
    `disagreements` counts the samples the two judgements judge differently."""
    samples = [s for group in by_problem.values() for s in group]
    if answer_type == "choice" or not samples or any(s.get("official") is None for s in samples):
        return None
    rows = [(len(g), sum(bool(s["official"]) for s in g)) for g in by_problem.values() if g]
    sizes = np.array([m for m, _ in rows], dtype=int)
    accs = np.array([c / m for m, c in rows], dtype=float)
    pass_k = {}
    for k in k_values(n):
        pass_k[str(k)] = float(np.mean([pass_at_k(m, c, min(k, m)) for m, c in rows])) * 100
    return {
        "judgement": "lighteval 0.10 math_pass_at_1",
        "pass_at_1": float(accs.mean()) * 100,
        "stderr": float(accs.std(ddof=1) / np.sqrt(len(rows))) * 100 if len(rows) > 1 else 0.0,
        "ci95": _bootstrap_ci(sizes, accs, seed, n_bootstrap),
        "pass_at_k": pass_k,
        "disagreements": sum(bool(s["official"]) != bool(s["correct"]) for s in samples),
    }


def _rate(samples: Sequence[Mapping], predicate) -> float:
    return sum(bool(predicate(s)) for s in samples) / len(samples) * 100 if samples else 0.0
