"""RunFolder: the one place that knows a run folder's files, its shard files and its schema version.

<run_dir>/config.json                       RunHeader; written first, never changed (a different config is refused)
<run_dir>/completions.jsonl                 unsharded runs append here, one fsync'd CompletionRecord per line
<run_dir>/completions.shard-I-of-N.jsonl    shard I of N appends here (one writer per file, no interleaving)
<run_dir>/scores.jsonl, results.json        ScoreRecords and Results, rewritten atomically
<run_dir>/.visible-<token>                  written by a Ray driver; each task checks it sees it (shared storage)

Readers ignore a torn last line (a killed writer); an appender drops it first, so that sample is simply
generated again. Every (problem_id, sample_index) is read once: the first stored copy wins (completions.jsonl
first, then shard files in name order), so overlapping files never produce duplicates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evalkit.core.errors import DataError, EvalkitError
from evalkit.core.files import (
    JsonlAppender,
    now_iso,
    read_json_object,
    read_jsonl_numbered,
    write_json_atomic,
    write_jsonl_atomic,
    write_text_atomic,
)
from evalkit.core.records import CheckerSpec, CompletionRecord, Results, RunHeader, ScoreRecord
from evalkit.core.run_config import RunConfig, Shard, config_differences
from evalkit.core.types import stable_hash

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (1,)
CONFIG_FILE = "config.json"
SCORES_FILE = "scores.jsonl"
RESULTS_FILE = "results.json"
COMPLETIONS_FILE = "completions.jsonl"
_SHARD_GLOB = "completions.shard-*.jsonl"
_SHARD_NAME = re.compile(r"completions\.shard-(\d+)-of-(\d+)\.jsonl")
_MARKER_PREFIX = ".visible-"
_RUN_ID = re.compile(r"[0-9a-f]{16}")  # what stable_hash names a <out>/<run_id> folder


def completions_file_name(shard: Shard) -> str:
    if shard.is_whole:
        return COMPLETIONS_FILE
    return f"completions.shard-{shard.index}-of-{shard.count}.jsonl"


def _records(path: Path, record_type: type) -> list[Any]:
    """Typed records of one JSONL file (torn tail left out); a malformed record names its line."""
    records = []
    for number, data in read_jsonl_numbered(path)[0]:
        try:
            records.append(record_type.from_dict(data))
        except (DataError, TypeError) as err:  # TypeError: a field of the wrong shape
            raise DataError(f"{path}:{number}: {err}; fix or remove that line") from None
    return records


class CompletionAppender:
    """Appends CompletionRecords to one completions file (fsync'd, locked; see JsonlAppender)."""

    def __init__(self, path: Path) -> None:
        self._out = JsonlAppender(path)
        self.path = path

    def append(self, record: CompletionRecord) -> None:
        self._out.append(record.to_dict())

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> CompletionAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RunFolder:
    """One task's results folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def scores_path(self) -> Path:
        return self.path / SCORES_FILE

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS_FILE

    def exists(self) -> bool:
        """config.json is there: a run evalkit can resume, score and merge."""
        return self.config_path.is_file()

    def is_run(self) -> bool:
        """config.json or results.json is there: a run a report can show (perhaps unscored)."""
        return self.path.is_dir() and (self.exists() or self.results_path.is_file())

    # -- config.json ----------------------------------------------------------------------------------

    def header_dict(self) -> dict[str, Any] | None:
        """config.json as stored (any schema version), or None without one; for readers that must show
        folders this evalkit cannot run (reports)."""
        return read_json_object(self.config_path) if self.exists() else None

    def header(self) -> RunHeader:
        data = read_json_object(self.config_path)
        if "schema_version" not in data and "run_id" not in data:  # e.g. a checkpoint's config.json
            raise DataError(
                f"{self.config_path} is not an evalkit run's config.json; pass a run folder (results/<run_id>)"
            )
        version = data.get("schema_version")
        if version not in SUPPORTED_SCHEMA_VERSIONS:
            raise DataError(
                f"{self.config_path}: schema_version {version!r} is not supported by this evalkit "
                f"(supported: {', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}); upgrade evalkit"
            )
        header = RunHeader.from_dict(data)
        self._check_unedited(data, header)
        return header

    def _check_unedited(self, data: dict[str, Any], header: RunHeader) -> None:
        """config.json must still be the config its run_id (and the folder's name) is the hash of: an
        edited config would relabel samples drawn under another one. The fields that changed are named
        from results.json's copy of the config when there is one."""
        actual = stable_hash(data.get("config"))
        problems = []
        if actual != header.run_id:
            problems.append(f"its config hashes to {actual}, not to its run_id {header.run_id}")
        name = self.path.resolve().name
        if _RUN_ID.fullmatch(name) and name != header.run_id:
            problems.append(f"the folder is named {name} but its run_id is {header.run_id}")
        if not problems:
            return
        stored = self.results_dict() if self.has_results() else None
        copy = stored.get("config") if isinstance(stored, dict) else None
        diffs = config_differences(copy, data.get("config") or {}) if isinstance(copy, dict) else []
        changed = f"; changed since results.json was written: {', '.join(diffs)}" if diffs else ""
        raise DataError(
            f"{self.config_path} was edited ({'; '.join(problems)}{changed}); restore the original "
            "(a different config is a different run: run it into a new folder, never relabel samples)"
        )

    def config(self) -> RunConfig:
        return self.header().config

    def problems(self) -> list[dict[str, Any]]:
        """Each problem's id and breakdown metadata, in task order."""
        return self.header().problems

    def checker(self) -> CheckerSpec | None:
        """What scoring needs (answer type); None for folders written before evalkit stored it."""
        return self.header().checker

    def check_compatible(self, config: RunConfig) -> None:
        """Refuse to mix samples of different configs in one folder; says which fields differ."""
        if not self.exists():
            return
        diffs = config_differences(self.config().to_dict(), config.to_dict())
        if diffs:
            raise EvalkitError(
                f"{self.path} holds a run with a different config ({'; '.join(diffs)}); "
                "use another --out folder or the same settings"
            )

    def initialise(self, config: RunConfig, problems: list[dict[str, Any]], *, checker: CheckerSpec) -> None:
        """Write config.json (first, atomically) unless an identical one is already there. When that fails
        (a full disk), the folders this call created are removed again: no empty run folder is left."""
        self.check_compatible(config)
        if self.exists():
            return
        created = [p for p in (self.path, *self.path.parents) if not p.exists()]
        header = RunHeader(SCHEMA_VERSION, config.run_id, config, now_iso(), problems, checker)
        try:
            write_json_atomic(self.config_path, header.to_dict())
        except BaseException:
            for folder in created:  # deepest first; rmdir removes only what is still empty
                try:
                    folder.rmdir()
                except OSError:
                    break
            raise

    # -- completions ----------------------------------------------------------------------------------

    def completion_files(self) -> list[Path]:
        """completions.jsonl first, then shard files in name order: a fixed order makes 'first copy wins'
        deterministic."""
        main = self.path / COMPLETIONS_FILE
        return ([main] if main.exists() else []) + sorted(self.path.glob(_SHARD_GLOB))

    def completions(self) -> list[CompletionRecord]:
        """Every stored completion once (torn tails ignored, duplicates dropped), in file order."""
        seen: set[tuple[str, int]] = set()
        records = []
        for path in self.completion_files():
            for record in _records(path, CompletionRecord):
                if record.key not in seen:
                    seen.add(record.key)
                    records.append(record)
        return records

    def shards_present(self) -> list[Shard]:
        """The shards that have a completions file here (any count N), in name order."""
        shards = []
        for path in sorted(self.path.glob(_SHARD_GLOB)):
            match = _SHARD_NAME.fullmatch(path.name)
            if match and 1 <= int(match.group(1)) <= int(match.group(2)):
                shards.append(Shard(int(match.group(1)), int(match.group(2))))
        return shards

    def appender(self, shard: Shard) -> CompletionAppender:
        """The writer of this shard's completions file (drops a torn last line first)."""
        return CompletionAppender(self.path / completions_file_name(shard))

    # -- the shared-storage check of a cluster run ------------------------------------------------------

    def write_marker(self, token: str, text: str) -> None:
        """A file only this launch's driver writes: a task that sees it sees the driver's folder."""
        write_text_atomic(self.path / f"{_MARKER_PREFIX}{token}", text)

    def has_marker(self, token: str) -> bool:
        return (self.path / f"{_MARKER_PREFIX}{token}").is_file()

    def remove_marker(self, token: str) -> None:
        (self.path / f"{_MARKER_PREFIX}{token}").unlink(missing_ok=True)

    # -- scores.jsonl and results.json ----------------------------------------------------------------

    def write_scores(self, records: list[ScoreRecord]) -> None:
        write_jsonl_atomic(self.scores_path, (r.to_dict() for r in records))

    def scores(self) -> list[ScoreRecord]:
        return _records(self.scores_path, ScoreRecord)

    def has_results(self) -> bool:
        return self.results_path.is_file()

    def results_dict(self) -> dict[str, Any] | None:
        """results.json as stored (any schema version), or None without one (reports)."""
        return read_json_object(self.results_path) if self.has_results() else None

    def write_results(self, results: Results) -> None:
        write_json_atomic(self.results_path, results.to_dict())

    def results(self) -> Results:
        return Results.from_dict(read_json_object(self.results_path))
