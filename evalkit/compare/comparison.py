"""One paired comparison of two runs: the numbers every output format shows, and its JSON form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.compare.load import RunVerdicts, align, load_verdicts
from evalkit.compare.stats import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_PERMUTATIONS,
    EXACT_LIMIT,
    PairedResult,
    common_ks,
    compare_counts,
)
from evalkit.core.errors import EvalkitError

ALPHA = 0.05
DEFAULT_TOP = 5
JSON_FORMAT = "evalkit-compare"
JSON_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ProblemRow:
    """One problem: each run's correct / scored samples, Pass@1 in percent, and A - B in points."""

    id: str
    a_correct: int
    a_samples: int
    b_correct: int
    b_samples: int

    @property
    def a(self) -> float:
        return 100 * self.a_correct / self.a_samples

    @property
    def b(self) -> float:
        return 100 * self.b_correct / self.b_samples

    @property
    def delta(self) -> float:
        return self.a - self.b

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "a": self.a,
            "b": self.b,
            "delta": self.delta,
            "a_correct": self.a_correct,
            "a_samples": self.a_samples,
            "b_correct": self.b_correct,
            "b_samples": self.b_samples,
        }


@dataclass(frozen=True)
class Comparison:
    task: str
    a: RunVerdicts
    b: RunVerdicts
    pass_at_1: PairedResult
    pass_at_k: dict[int, PairedResult]  # k >= 2 both runs allow
    problems: tuple[ProblemRow, ...]  # A's task order
    warnings: tuple[str, ...]
    seed: int
    n_bootstrap: int
    n_permutations: int
    top: int = DEFAULT_TOP

    @property
    def significant(self) -> bool:
        return self.pass_at_1.p_value < ALPHA

    def deciding(self) -> tuple[list[ProblemRow], list[ProblemRow]]:
        """(where A is ahead, where B is ahead): the `top` largest differences each way, largest first."""
        a_ahead = sorted((r for r in self.problems if r.delta > 0), key=lambda r: -r.delta)
        b_ahead = sorted((r for r in self.problems if r.delta < 0), key=lambda r: r.delta)
        return a_ahead[: self.top], b_ahead[: self.top]

    def verdict(self) -> str:
        """One sentence a reader can quote."""
        r = self.pass_at_1
        interval = f"95% CI [{r.ci95[0]:+.1f}, {r.ci95[1]:+.1f}]"
        p = format_p(r.p_value)
        covers_zero = r.ci95[0] <= 0 <= r.ci95[1]
        if not self.significant:
            text = (
                f"No significant difference: A - B = {r.delta:+.1f} points ({interval}, p = {p}); "
                f"on these {len(self.problems)} problems the runs are not told apart at {ALPHA}."
            )
            if not covers_zero:  # few problems: the permutation test cannot reach 0.05 however large d is
                text += " (The CI excludes 0, but the permutation test over problems does not reject.)"
            return text
        leader = "A" if r.delta > 0 else "B"
        text = f"{leader} is better: A - B = {r.delta:+.1f} points ({interval}, p = {p} < {ALPHA})."
        if covers_zero:
            # The two-level bootstrap adds each problem's sampling noise on top of the spread over
            # problems (which already holds it), so with few samples per problem it is the wider one.
            text += (
                " The CI, which also resamples the samples within each problem, still includes 0: "
                "more samples per problem would settle it."
            )
        return text

    def method(self) -> dict[str, Any]:
        r = self.pass_at_1
        return {
            "stderr": "sd of the per-problem differences (ddof=1) / sqrt(problems)",
            "ci95": (
                f"paired two-level bootstrap, {self.n_bootstrap} replicates: problems resampled with "
                "replacement (the same draw for both runs), then each run's samples within each problem; "
                "2.5 and 97.5 percentiles (conservative: the spread over problems already holds the sample "
                "noise, which the inner level adds again)"
            ),
            "p_value": (
                "two-sided paired permutation test over problems (A and B swapped per problem, statistic "
                f"|mean difference|); exact enumeration when at most {EXACT_LIMIT} problems differ, else "
                f"{self.n_permutations} seeded Monte Carlo permutations with p = (1 + hits) / (1 + draws)"
            ),
            "p_method": r.p_method,
            "permutations": r.permutations,
            "problems_that_differ": r.nonzero,
            "alpha": ALPHA,
        }

    def to_json(self) -> dict[str, Any]:
        """The `--format json` document (numbers in points / percent, counts in samples)."""
        r = self.pass_at_1
        a_ahead, b_ahead = self.deciding()
        return {
            "format": JSON_FORMAT,
            "schema_version": JSON_SCHEMA_VERSION,
            "task": self.task,
            "metric": "pass_at_1",
            "a": {**self.a.summary(), "pass_at_1": r.a},
            "b": {**self.b.summary(), "pass_at_1": r.b},
            "num_problems": len(self.problems),
            "delta": r.delta,
            "stderr": r.stderr,
            "ci95": list(r.ci95),
            "p_value": r.p_value,
            "significant": self.significant,
            "verdict": self.verdict(),
            "method": self.method(),
            "seed": self.seed,
            "n_bootstrap": self.n_bootstrap,
            "n_permutations": self.n_permutations,
            "pass_at_k": {str(k): result_dict(v) for k, v in self.pass_at_k.items()},
            "warnings": list(self.warnings),
            "deciding": {"a_ahead": [x.id for x in a_ahead], "b_ahead": [x.id for x in b_ahead]},
            "problems": [row.to_dict() for row in self.problems],
        }


def result_dict(r: PairedResult) -> dict[str, Any]:
    return {
        "a": r.a,
        "b": r.b,
        "delta": r.delta,
        "stderr": r.stderr,
        "ci95": list(r.ci95),
        "p_value": r.p_value,
        "p_method": r.p_method,
        "permutations": r.permutations,
    }


def format_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def compare_runs(
    path_a: Path,
    path_b: Path,
    *,
    seed: int = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    allow_incomplete: bool = False,
    top: int = DEFAULT_TOP,
) -> Comparison:
    """Load, check and compare two run folders (A - B)."""
    if n_bootstrap < 1:
        raise EvalkitError(f"--n-bootstrap must be at least 1, got {n_bootstrap}")
    if n_permutations < 1:
        raise EvalkitError(f"--n-permutations must be at least 1, got {n_permutations}")
    if top < 0:
        raise EvalkitError(f"--top must be 0 or more, got {top}")
    a, b = load_verdicts(path_a), load_verdicts(path_b)
    aligned = align(a, b, allow_incomplete=allow_incomplete)
    ks = (1, *common_ks(a.n, b.n, aligned.a_samples, aligned.b_samples))
    results = compare_counts(
        aligned.a_samples,
        aligned.a_correct,
        aligned.b_samples,
        aligned.b_correct,
        ks,
        seed=seed,
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
    )
    problems = tuple(
        ProblemRow(pid, int(ac), int(am), int(bc), int(bm))
        for pid, am, ac, bm, bc in zip(
            aligned.problem_ids,
            aligned.a_samples,
            aligned.a_correct,
            aligned.b_samples,
            aligned.b_correct,
            strict=True,
        )
    )
    return Comparison(
        task=aligned.task,
        a=a,
        b=b,
        pass_at_1=results[1],
        pass_at_k={k: v for k, v in results.items() if k != 1},
        problems=problems,
        warnings=aligned.warnings,
        seed=seed,
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
        top=top,
    )
