"""Scoring a run: verdicts and metrics from the completions, config and problem index it is given.

`score` reads and writes nothing (the checker's worker processes aside), so `evalkit run` calls it with
what it holds and `evalkit score` / `evalkit merge` call it with what they read from the folder.

Every pass judges each response twice: evalkit's verdict (scores.jsonl `correct`, what every metric
uses) and the official judgement beside it (`official`, metrics "official"; see scoring.score_both).
`checker_options` picks the options: those given, else the ones the folder recorded, else the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.core.errors import EvalkitError
from evalkit.core.files import now_iso
from evalkit.core.records import CheckerSpec, CompletionRecord, ScoreRecord, ScoringInfo
from evalkit.core.run_config import RunConfig
from evalkit.metrics import compute_metrics
from evalkit.scoring import CHECKER_VERSION, CheckerOptions, ScoreItem, ScoringPool, score_both


@dataclass(frozen=True)
class ScoredRun:
    scores: list[ScoreRecord]  # in task order, then sample index
    metrics: dict[str, Any]  # the METRICS dict of results.json
    scoring: ScoringInfo  # provenance "scoring"
    generated_tokens: int  # over the scored samples


def score(
    completions: Sequence[CompletionRecord],
    config: RunConfig,
    problems: Sequence[dict[str, Any]],
    checker: CheckerSpec,
    *,
    pool: ScoringPool | None = None,
    workers: int | None = None,
    options: CheckerOptions | None = None,
    on_scored: Callable[[int], None] | None = None,
) -> ScoredRun:
    """Score the completions of the run's problems (ids + metadata, in task order) and sample indices
    below n; samples of other problems or beyond n are left out. The symbolic checks run in `pool`
    (the caller's), or in `workers` processes made for this call. `options` None: `checker`'s."""
    options = options if options is not None else checker_options(checker)
    position = {p["id"]: i for i, p in enumerate(problems)}
    records = [r for r in completions if r.problem_id in position and 0 <= r.sample_index < config.n]
    records.sort(key=lambda r: (position[r.problem_id], r.sample_index))
    items = [ScoreItem(gold=r.gold, response=r.text, answer_type=checker.answer_type) for r in records]
    verdicts, official = score_both(items, pool=pool, workers=workers, options=options, progress=on_scored)
    scores = [
        ScoreRecord(
            problem_id=r.problem_id,
            sample_index=r.sample_index,
            correct=bool(v.correct),
            extracted=v.extracted,
            reason=v.reason,
            gold=r.gold,
            finish_reason=r.finish_reason,
            num_generated_tokens=r.num_generated_tokens,
            permutation=r.permutation,  # GPQA: maj@k groups wrong votes by option, not by letter
            source=v.source,
            official=None if o is None else bool(o.correct),
            official_extracted=None if o is None else o.extracted,
            official_reason=None if o is None else o.reason,
        )
        for r, v, o in zip(records, verdicts, official, strict=True)
    ]
    metrics = compute_metrics(
        [s.to_dict() for s in scores],
        task=config.task,
        n=config.n,
        problem_metadata={p["id"]: {k: v for k, v in p.items() if k != "id"} for p in problems},
        problem_ids=[p["id"] for p in problems],
        seed=config.seeds[0],  # the bootstrap CI's seed; a pooled run uses its lowest seed
        answer_type=checker.answer_type,
    )
    return ScoredRun(
        scores=scores,
        metrics=metrics,
        scoring=ScoringInfo(CHECKER_VERSION, "evalkit", len(scores), now_iso(), options.as_dict()),
        generated_tokens=sum(int(r.num_generated_tokens) for r in records),
    )


def checker_options(checker: CheckerSpec, given: CheckerOptions | None = None) -> CheckerOptions:
    """The options to score with: `given`, else those `checker` (config.json) recorded, else the
    defaults. Options a newer evalkit recorded are refused (one line naming them)."""
    if given is not None:
        return given
    try:
        return CheckerOptions.from_dict(checker.options)
    except ValueError as err:
        raise EvalkitError(f"config.json's checker section: {err}") from None
