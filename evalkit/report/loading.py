"""Run folders as the reports see them, read through RunFolder (the one reader of a run folder).

A folder with neither config.json nor results.json is not a run; a run without results.json, or with
`final: false` or `metrics.complete: false`, is loaded as incomplete so tables can mark it instead of
hiding it. Reports show what a folder says (any schema version, hand-written folders), so config and
provenance stay plain dicts here; mixing schema versions in one report is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.errors import DataError, EvalkitError
from evalkit.core.records import ScoreRecord
from evalkit.core.run_folder import CONFIG_FILE, RESULTS_FILE, SUPPORTED_SCHEMA_VERSIONS, RunFolder


class ReportInputError(EvalkitError):
    """A folder given to `evalkit leaderboard` / `evalkit report` cannot be read as a run."""


@dataclass(frozen=True)
class RunRecord:
    """One run folder as the reports see it. `metrics` is None when the run was never scored."""

    path: Path
    run_id: str
    schema_version: int
    config: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    final: bool = False
    metrics: dict[str, Any] | None = None
    created: str | None = None

    @property
    def model(self) -> str:
        return str(self.config.get("model", "?"))

    @property
    def task(self) -> str:
        if self.metrics and self.metrics.get("task"):
            return str(self.metrics["task"])
        return str(self.config.get("task", "?"))

    @property
    def complete(self) -> bool:
        """Final and with every sample present: the only state a table may show as a result."""
        return bool(self.final and self.metrics and self.metrics.get("complete", False))

    @property
    def short_id(self) -> str:
        return self.run_id[:6]


def is_run_dir(path: Path) -> bool:
    return RunFolder(path).is_run()


def find_run_dirs(paths: list[Path], skipped: list[Path] | None = None) -> list[Path]:
    """Each path is a run folder or a folder whose direct subfolders are run folders.

    One path that is neither is an error. Among several paths (`evalkit leaderboard results/*` also
    matches results/reference/ and README.md) such paths are skipped and appended to `skipped`,
    unless no run is found at all.
    """
    found: list[Path] = []
    not_runs: list[Path] = []
    for path in paths:
        if not path.exists():
            raise ReportInputError(f"{path} does not exist; pass a run folder (results/<run_id>) or results/")
        if path.is_file() and path.name in (CONFIG_FILE, RESULTS_FILE):
            path = path.parent  # a run's own file stands for its folder
        if is_run_dir(path):
            found.append(path)
            continue
        children = sorted(child for child in path.iterdir() if is_run_dir(child)) if path.is_dir() else []
        if children:
            found.extend(children)
        else:
            not_runs.append(path)
    if not_runs and (len(paths) == 1 or not found):
        raise ReportInputError(
            f"{not_runs[0]} is not a run folder (no config.json or results.json) and holds none; "
            "pass results/<run_id> or the results/ folder"
        )
    if skipped is not None:
        skipped.extend(not_runs)
    # The same folder given twice (results/ and results/x) is one run, not two.
    return list(dict.fromkeys(p.resolve() for p in found))


def _read(read: Any) -> Any:
    """Run a RunFolder read; its DataError becomes the report's one-line input error."""
    try:
        return read()
    except (DataError, OSError) as exc:
        raise ReportInputError(f"{exc}; is the run folder damaged?") from exc


def load_run(path: Path) -> RunRecord:
    """Read one run folder; raises ReportInputError for a folder that is not a run."""
    path = Path(path)
    if not is_run_dir(path):
        raise ReportInputError(
            f"{path} is not a run folder (no config.json or results.json); pass results/<run_id>"
        )
    folder = RunFolder(path)
    header = _read(folder.header_dict) or {}
    results = _read(folder.results_dict) or {}
    config = results.get("config") or header.get("config") or {}
    version = results.get("schema_version", header.get("schema_version"))
    if not isinstance(version, int):
        raise ReportInputError(f"{path} has no integer schema_version in config.json/results.json")
    return RunRecord(
        path=path,
        run_id=str(results.get("run_id") or header.get("run_id") or path.name),
        schema_version=version,
        config=dict(config),
        provenance=dict(results.get("provenance") or {}),
        final=bool(results.get("final", False)),
        metrics=results.get("metrics"),
        created=header.get("created"),
    )


def load_runs(paths: list[Path], skipped: list[Path] | None = None) -> list[RunRecord]:
    """Load every run under `paths`; all must share one supported schema version."""
    runs = [load_run(p) for p in find_run_dirs([Path(p) for p in paths], skipped)]
    versions = sorted({run.schema_version for run in runs})
    if len(versions) > 1:
        by_version = "; ".join(
            f"v{v}: " + ", ".join(str(r.path) for r in runs if r.schema_version == v) for v in versions
        )
        raise ReportInputError(
            f"run folders mix schema versions ({by_version}); report runs of one version at a time"
        )
    if versions and versions[0] not in SUPPORTED_SCHEMA_VERSIONS:
        raise ReportInputError(
            f"schema_version {versions[0]} of {runs[0].path} is not supported by this evalkit "
            f"(supported: {', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}); upgrade evalkit"
        )
    return runs


def _official_keys(score: ScoreRecord | None) -> dict[str, Any]:
    names = ("source", "official", "official_extracted", "official_reason")
    return {name: getattr(score, name) if score else None for name in names}


def read_samples(run: RunRecord) -> list[dict[str, Any]]:
    """Every completion joined with its score, sorted by (problem_id, sample_index).

    Keys: problem_id, sample_index, text, gold, extracted, correct (bool|None when unscored), reason,
    finish_reason, num_generated_tokens, and the official judgement's official (bool|None: none
    stored), official_extracted, official_reason, and source (where our answer was found).
    """
    folder = RunFolder(run.path)
    completions = _read(folder.completions)  # shard files included, first stored copy of a sample wins
    scores = {s.key: s for s in _read(folder.scores)}
    samples: dict[tuple[str, int], dict[str, Any]] = {}
    for comp in completions:
        score = scores.get(comp.key)
        samples[comp.key] = {
            "problem_id": comp.problem_id,
            "sample_index": comp.sample_index,
            "text": comp.text,
            "gold": score.gold if score else comp.gold,
            "extracted": score.extracted if score else None,
            "correct": score.correct if score else None,
            "reason": score.reason if score else None,
            "finish_reason": comp.finish_reason,
            "num_generated_tokens": comp.num_generated_tokens,
            **_official_keys(score),
        }
    # Scores without a completion line (completions trimmed by hand) still count for plots.
    for key, score in scores.items():
        samples.setdefault(
            key,
            {
                "problem_id": score.problem_id,
                "sample_index": score.sample_index,
                "text": None,
                "gold": score.gold,
                "extracted": score.extracted,
                "correct": score.correct,
                "reason": score.reason,
                "finish_reason": score.finish_reason,
                "num_generated_tokens": score.num_generated_tokens,
                **_official_keys(score),
            },
        )
    return [samples[key] for key in sorted(samples, key=lambda k: (str(k[0]), int(k[1])))]
