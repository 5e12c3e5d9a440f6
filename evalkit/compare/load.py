"""Read two run folders into aligned per-problem verdict counts, refusing pairs that cannot be compared.

A pair is refused (EvalkitError, one line) when the tasks differ or the problems differ: other problem
ids, other data under the same prompt (data_fingerprint), or another gold for the same id. Differences
that leave the problems alone but may move the numbers (sampling settings, prompt, checker, n) are
allowed and returned as warnings, which every output format repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.core.errors import EvalkitError
from evalkit.core.run_config import RunConfig
from evalkit.core.run_folder import RunFolder

SAMPLING_FIELDS = ("temperature", "top_p", "max_new_tokens")
PROMPT_FIELDS = ("prompt_name", "prompt_hash")


@dataclass(frozen=True)
class RunVerdicts:
    """One run as the comparison sees it: every stored verdict, by problem, in sample-index order."""

    path: Path
    run_id: str
    config: RunConfig
    problem_ids: tuple[str, ...]  # task order
    verdicts: dict[str, tuple[bool, ...]]  # problem id -> verdicts of samples 0..n-1 that are scored
    golds: dict[str, str]  # problem id -> gold, where it does not depend on the sample (no permutation)
    checker: str  # the checker that produced scores.jsonl: "<version> (<mode>)"

    @property
    def n(self) -> int:
        return self.config.n

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def missing(self) -> int:
        return sum(max(0, self.n - len(self.verdicts.get(pid, ()))) for pid in self.problem_ids)

    @property
    def seed_text(self) -> str:
        """The seed as text: 0, or a pooled run's 0,1,2."""
        return ",".join(map(str, self.config.seeds))

    @property
    def label(self) -> str:
        seeds = "seeds" if self.config.is_pooled else "seed"
        return f"{self.config.model} ({self.run_id[:6]}, {seeds} {self.seed_text})"

    def summary(self) -> dict[str, Any]:
        """The identity block of the JSON output."""
        keys = ("model", "model_revision", "backend", "seed", "n", "temperature", "top_p", "max_new_tokens")
        config = self.config.to_dict()  # a pooled run's seed as config.json's list
        return {
            "path": str(self.path),
            "run_id": self.run_id,
            **{key: config[key] for key in keys},
            "prompt_name": config["prompt_name"],
            "checker": self.checker,
            "missing_samples": self.missing,
        }


def load_verdicts(path: Path) -> RunVerdicts:
    """Read config.json, scores.jsonl and (for the checker actually used) results.json of one run."""
    folder = RunFolder(Path(path))
    if not folder.exists():
        raise EvalkitError(f"{path} is not a run folder (no config.json); pass results/<run_id>")
    header = folder.header()  # every RunConfig field present, or a one-line error naming the missing ones
    if not folder.scores_path.is_file():
        raise EvalkitError(f"{path} has no scores.jsonl; score it first: evalkit score {path}")
    n = header.config.n
    by_problem: dict[str, dict[int, bool]] = {}
    golds: dict[str, str] = {}
    for record in folder.scores():
        if not 0 <= record.sample_index < n:
            continue
        pid = str(record.problem_id)
        # a re-scored sample replaces the earlier record of the same index, as in metrics.py
        by_problem.setdefault(pid, {})[record.sample_index] = bool(record.correct)
        if record.permutation is None and record.gold is not None:
            golds.setdefault(pid, str(record.gold))
    listed = [str(p["id"]) for p in header.problems]
    problem_ids = tuple(listed or by_problem)  # old folders without a problem list: the scored ones
    scoring = folder.results().provenance.scoring if folder.has_results() else None
    recorded = header.checker.checker_version if header.checker is not None else None
    version = (
        scoring.checker_version if scoring is not None else recorded or header.config.legacy_checker_version
    )
    mode = scoring.mode if scoring is not None and scoring.mode else "evalkit"
    # options that are on (strict_thinking), so two scorings with other options are told apart
    mode += "".join(f", {k}" for k, v in sorted(((scoring.options if scoring else None) or {}).items()) if v)
    return RunVerdicts(
        path=Path(path),
        run_id=header.run_id or folder.path.name,
        config=header.config,
        problem_ids=problem_ids,
        verdicts={pid: tuple(v[i] for i in sorted(v)) for pid, v in by_problem.items()},
        golds=golds,
        checker=f"{version} ({mode})",
    )


@dataclass(frozen=True)
class Aligned:
    """Both runs' counts over the problems they share, in A's task order."""

    task: str
    problem_ids: tuple[str, ...]
    a_samples: np.ndarray
    a_correct: np.ndarray
    b_samples: np.ndarray
    b_correct: np.ndarray
    warnings: tuple[str, ...]


def _examples(ids: list[str]) -> str:
    return ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")


def check_same_problems(a: RunVerdicts, b: RunVerdicts) -> None:
    """Refuse runs of different tasks or problem sets, naming the difference in one line."""
    if a.task != b.task:
        raise EvalkitError(
            f"the runs are of different tasks ({a.path} is {a.task}, {b.path} is {b.task}); "
            "compare two runs of one task"
        )
    only_a = [p for p in a.problem_ids if p not in set(b.problem_ids)]
    only_b = [p for p in b.problem_ids if p not in set(a.problem_ids)]
    if only_a or only_b:
        parts = [
            f"{len(x)} only in {run.path} ({_examples(x)})" for x, run in ((only_a, a), (only_b, b)) if x
        ]
        raise EvalkitError(
            f"the runs hold different problems of {a.task}: {'; '.join(parts)}; "
            "compare runs over the same problems (same --limit and data)"
        )
    same_prompt = all(getattr(a.config, f) == getattr(b.config, f) for f in PROMPT_FIELDS)
    # The fingerprint covers the rendered prompts too: it tells data apart only under the same prompt.
    if same_prompt and a.config.data_fingerprint != b.config.data_fingerprint:
        raise EvalkitError(
            f"the runs read different {a.task} data (data_fingerprint {a.config.data_fingerprint[:12]} "
            f"vs {b.config.data_fingerprint[:12]}); compare runs over the same benchmark data"
        )
    other_gold = [p for p in a.problem_ids if p in a.golds and p in b.golds and a.golds[p] != b.golds[p]]
    if other_gold:
        first = other_gold[0]
        raise EvalkitError(
            f"the runs hold different problems under the same ids ({len(other_gold)} with another gold, "
            f"e.g. {first}: {a.golds[first]!r} vs {b.golds[first]!r}); compare runs over the same data"
        )


def _changed(a: RunVerdicts, b: RunVerdicts, names: tuple[str, ...]) -> str:
    pairs = ((f, getattr(a.config, f), getattr(b.config, f)) for f in names)
    return ", ".join(f"{f} {x!r} vs {y!r}" for f, x, y in pairs if x != y)


def setting_warnings(a: RunVerdicts, b: RunVerdicts) -> list[str]:
    """What differs besides the model and seed that could move the numbers: one line per kind."""
    out = []
    sampling = _changed(a, b, SAMPLING_FIELDS)
    if sampling:
        out.append(f"sampling settings differ ({sampling}): the difference may come from them, not the model")
    prompt = _changed(a, b, PROMPT_FIELDS)
    if prompt:
        out.append(f"prompts differ ({prompt}): the difference may come from the prompt")
    if a.checker != b.checker:
        out.append(
            f"checker versions differ ({a.checker} vs {b.checker}): the same answer may be judged differently; "
            "re-score both with `evalkit score`"
        )
    if a.n != b.n:
        out.append(
            f"n differs ({a.n} vs {b.n} samples per problem): Pass@1 is still paired per problem; "
            f"pass@k is compared only up to k={min(a.n, b.n)}"
        )
    if a.path.resolve() == b.path.resolve():
        out.append(f"both arguments are the same run ({a.path})")
    return out


def align(a: RunVerdicts, b: RunVerdicts, *, allow_incomplete: bool = False) -> Aligned:
    """Counts of both runs per problem; refuses incomplete runs unless `allow_incomplete`."""
    check_same_problems(a, b)
    warnings = setting_warnings(a, b)
    for run in (a, b):
        if run.missing and not allow_incomplete:
            raise EvalkitError(
                f"{run.path} is incomplete ({run.missing} of {run.n * len(run.problem_ids)} samples "
                "missing or unscored); finish it (re-run its command, then evalkit score) "
                "or pass --allow-incomplete"
            )
        if run.missing:
            warnings.append(
                f"{run.path} is incomplete ({run.missing} samples missing): not a final comparison"
            )
    ids = [p for p in a.problem_ids if a.verdicts.get(p) and b.verdicts.get(p)]
    dropped = len(a.problem_ids) - len(ids)
    if dropped:
        warnings.append(f"{dropped} problems without any scored sample in one run are left out")
    if not ids:
        raise EvalkitError(f"no problem has scored samples in both {a.path} and {b.path}; score them first")

    def counts(run: RunVerdicts) -> tuple[np.ndarray, np.ndarray]:
        samples = np.array([len(run.verdicts[p]) for p in ids], dtype=int)
        correct = np.array([sum(run.verdicts[p]) for p in ids], dtype=int)
        return samples, correct

    (a_samples, a_correct), (b_samples, b_correct) = counts(a), counts(b)
    return Aligned(a.task, tuple(ids), a_samples, a_correct, b_samples, b_correct, tuple(warnings))
