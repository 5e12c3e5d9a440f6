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

from evalkit.storage import RunFolder
from evalkit.types import EvalkitError

SAMPLING_FIELDS = ("temperature", "top_p", "max_new_tokens")
PROMPT_FIELDS = ("prompt_name", "prompt_hash")


@dataclass(frozen=True)
class RunVerdicts:
    """One run as the comparison sees it: every stored verdict, by problem, in sample-index order."""

    path: Path
    run_id: str
    config: dict[str, Any]  # config.json's "config"
    problem_ids: tuple[str, ...]  # task order
    verdicts: dict[str, tuple[bool, ...]]  # problem id -> verdicts of samples 0..n-1 that are scored
    golds: dict[str, str]  # problem id -> gold, where it does not depend on the sample (no permutation)
    checker: str  # the checker that produced scores.jsonl: "<version> (<mode>)"

    @property
    def n(self) -> int:
        return int(self.config["n"])

    @property
    def task(self) -> str:
        return str(self.config["task"])

    @property
    def missing(self) -> int:
        return sum(max(0, self.n - len(self.verdicts.get(pid, ()))) for pid in self.problem_ids)

    @property
    def label(self) -> str:
        return f"{self.config.get('model', '?')} ({self.run_id[:6]}, seed {self.config.get('seed')})"

    def summary(self) -> dict[str, Any]:
        """The identity block of the JSON output."""
        keys = ("model", "model_revision", "backend", "seed", "n", "temperature", "top_p", "max_new_tokens")
        return {
            "path": str(self.path),
            "run_id": self.run_id,
            **{key: self.config.get(key) for key in keys},
            "prompt_name": self.config.get("prompt_name"),
            "checker": self.checker,
            "missing_samples": self.missing,
        }


def load_verdicts(path: Path) -> RunVerdicts:
    """Read config.json, scores.jsonl and (for the checker actually used) results.json of one run."""
    folder = RunFolder(Path(path))
    if not folder.exists():
        raise EvalkitError(f"{path} is not a run folder (no config.json); pass results/<run_id>")
    header = folder.read_config_file()
    folder.config()  # every RunConfig field present, or a one-line error naming the missing ones
    config = dict(header["config"])
    if not folder.scores_path.is_file():
        raise EvalkitError(f"{path} has no scores.jsonl; score it first: evalkit score {path}")
    n = int(config["n"])
    by_problem: dict[str, dict[int, bool]] = {}
    golds: dict[str, str] = {}
    for record in folder.scores():
        index = int(record["sample_index"])
        if not 0 <= index < n:
            continue
        pid = str(record["problem_id"])
        # a re-scored sample replaces the earlier record of the same index, as in metrics.py
        by_problem.setdefault(pid, {})[index] = bool(record["correct"])
        if record.get("permutation") is None and record.get("gold") is not None:
            golds.setdefault(pid, str(record["gold"]))
    listed = [str(p["id"]) for p in folder.problems()]
    problem_ids = tuple(listed or by_problem)  # old folders without a problem list: the scored ones
    scoring = (
        (folder.results().get("provenance") or {}).get("scoring") if folder.results_path.exists() else None
    )
    scoring = scoring or {}
    checker = (
        f"{scoring.get('checker_version', config.get('checker_version'))} ({scoring.get('mode', 'evalkit')})"
    )
    return RunVerdicts(
        path=Path(path),
        run_id=str(header.get("run_id") or folder.path.name),
        config=config,
        problem_ids=problem_ids,
        verdicts={pid: tuple(v[i] for i in sorted(v)) for pid, v in by_problem.items()},
        golds=golds,
        checker=checker,
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
    same_prompt = all(a.config.get(f) == b.config.get(f) for f in PROMPT_FIELDS)
    # The fingerprint covers the rendered prompts too: it tells data apart only under the same prompt.
    if same_prompt and a.config.get("data_fingerprint") != b.config.get("data_fingerprint"):
        raise EvalkitError(
            f"the runs read different {a.task} data (data_fingerprint {str(a.config.get('data_fingerprint'))[:12]} "
            f"vs {str(b.config.get('data_fingerprint'))[:12]}); compare runs over the same benchmark data"
        )
    other_gold = [p for p in a.problem_ids if p in a.golds and p in b.golds and a.golds[p] != b.golds[p]]
    if other_gold:
        first = other_gold[0]
        raise EvalkitError(
            f"the runs hold different problems under the same ids ({len(other_gold)} with another gold, "
            f"e.g. {first}: {a.golds[first]!r} vs {b.golds[first]!r}); compare runs over the same data"
        )


def _changed(a: RunVerdicts, b: RunVerdicts, names: tuple[str, ...]) -> str:
    return ", ".join(
        f"{f} {a.config.get(f)!r} vs {b.config.get(f)!r}" for f in names if a.config.get(f) != b.config.get(f)
    )


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
