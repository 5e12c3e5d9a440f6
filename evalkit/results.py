"""Results assembly: a scored run + its provenance -> scores.jsonl and results.json (atomic writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalkit.core.files import now_iso
from evalkit.core.records import Provenance, Results
from evalkit.core.run_config import RunConfig
from evalkit.core.run_folder import SCHEMA_VERSION, RunFolder
from evalkit.provenance import collect
from evalkit.run_scoring import ScoredRun


@dataclass(frozen=True)
class Session:
    """What this process did before scoring, for provenance. `notes` (generated_this_session,
    merged_from) are written after the fixed provenance keys."""

    model_info: dict[str, Any] | None = None
    started: str | None = None
    wall_seconds: float | None = None
    shard: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def session_provenance(session: Session, scored: ScoredRun) -> Provenance:
    return collect(
        model_info=session.model_info,
        started=session.started,
        ended=now_iso(),
        wall_seconds=session.wall_seconds,
        generated_tokens=scored.generated_tokens,
        shard=session.shard,
        scoring=scored.scoring,
        **session.notes,
    )


def write_results(folder: RunFolder, config: RunConfig, scored: ScoredRun, provenance: Provenance) -> Results:
    """scores.jsonl, then results.json (final when every sample of every problem is scored)."""
    folder.write_scores(scored.scores)
    results = Results(
        schema_version=SCHEMA_VERSION,
        run_id=config.run_id,
        config=config,
        provenance=provenance,
        final=bool(scored.metrics["complete"]),
        metrics=scored.metrics,
    )
    folder.write_results(results)
    return results
