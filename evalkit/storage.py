"""The run folder on disk: atomic JSON, fsync'd JSONL appends, and a reader that survives kill -9.

<run_dir>/config.json                 written first, never changed afterwards (a different config is refused)
<run_dir>/completions.jsonl           unsharded runs append here, one fsync'd line per sample
<run_dir>/completions.shard-I-of-N.jsonl   shard I of N appends here (one writer per file, no interleaving)
<run_dir>/scores.jsonl, results.json  rewritten atomically (temp file + fsync + os.replace)

A kill -9 can leave at most the last line of a JSONL file torn (no trailing newline). Readers ignore such a
tail; a writer opening the file rewrites it without the tail first, so the sample is simply generated again.
Every (problem_id, sample_index) is read once: the first stored copy wins, so overlapping files never
produce duplicates.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalkit.core.errors import DataError, EvalkitError
from evalkit.run_config import RunConfig, Shard, config_differences

SCHEMA_VERSION = 1
CONFIG_FILE = "config.json"
SCORES_FILE = "scores.jsonl"
RESULTS_FILE = "results.json"
COMPLETIONS_FILE = "completions.jsonl"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms can't open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder, fsync, then os.replace: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: Path, records: Iterable[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalkitError(f"{path} not found; is this an evalkit run folder?") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from None


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """(records, torn): every complete line of `path`; a last line without its newline is a torn write
    from a killed process and is left out (torn=True). A bad line anywhere else is a DataError."""
    if not path.exists():
        return [], False
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise DataError(f"{path}: line {number} is not valid JSON; fix or remove that line") from None
    return records, bool(tail.strip())


def drop_torn_tail(path: Path) -> bool:
    """Rewrite `path` atomically without a torn last line; True when one was dropped."""
    records, torn = read_jsonl(path)
    if torn:
        write_jsonl_atomic(path, records)
    return torn


def _lock(path: Path):
    """An exclusive, non-blocking lock on `path`'s lock file (released by the OS if the process dies); None where the
    platform has no fcntl."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, same as before
        return None
    handle = (path.parent / f".{path.name}.lock").open("a")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise EvalkitError(
            f"another evalkit process is writing {path}; wait for it, or give each process its own --shard"
        ) from None
    return handle


class JsonlAppender:
    """Append-only JSONL with one flush + fsync per record, so a kill loses at most the record in flight.

    One writer per file: a lock file beside it makes a second writer fail at once instead of interleaving
    lines (or repairing a tail the first writer is still writing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = _lock(path)
        try:
            self.dropped_torn_line = drop_torn_tail(path)
            self._handle = path.open("a", encoding="utf-8")
        except BaseException:
            self._release()
            raise

    def append(self, record: dict[str, Any]) -> None:
        # One write() of the whole line: a kill leaves either nothing or a prefix without its newline.
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor drops the flock
            self._lock = None

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def completions_file_name(shard: Shard) -> str:
    if shard.is_whole:
        return COMPLETIONS_FILE
    return f"completions.shard-{shard.index}-of-{shard.count}.jsonl"


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
        return self.config_path.is_file()

    # -- config ---------------------------------------------------------------------------------------

    def read_config_file(self) -> dict[str, Any]:
        data = read_json(self.config_path)
        if data.get("schema_version") != SCHEMA_VERSION:
            raise DataError(
                f"{self.config_path}: schema_version {data.get('schema_version')!r} is not supported"
            )
        return data

    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.read_config_file()["config"])

    def check_compatible(self, config: RunConfig) -> None:
        """Refuse to mix samples of different configs in one folder; says which fields differ."""
        if not self.exists():
            return
        old = self.read_config_file()["config"]
        diffs = config_differences(old, config.to_dict())
        if diffs:
            raise EvalkitError(
                f"{self.path} holds a run with a different config ({'; '.join(diffs)}); "
                "use another --out folder or the same settings"
            )

    def initialise(self, config: RunConfig, problems: list[dict[str, Any]]) -> None:
        """Write config.json (first, atomically) unless an identical one is already there.

        `problems` (id + breakdown metadata, in task order) lets `evalkit score` and `merge` know every
        problem of the run without loading the benchmark data.
        """
        self.check_compatible(config)
        if self.exists():
            return
        write_json_atomic(
            self.config_path,
            {
                "schema_version": SCHEMA_VERSION,
                "run_id": config.run_id,
                "config": config.to_dict(),
                "created": now_iso(),
                "problems": problems,
            },
        )

    def problems(self) -> list[dict[str, Any]]:
        return list(self.read_config_file().get("problems", []))

    # -- completions ----------------------------------------------------------------------------------

    def completion_files(self) -> list[Path]:
        """completions.jsonl first, then shard files in name order: a fixed order makes 'first copy wins'
        deterministic."""
        main = self.path / COMPLETIONS_FILE
        shards = sorted(self.path.glob("completions.shard-*.jsonl"))
        return ([main] if main.exists() else []) + shards

    def completions(self) -> list[dict[str, Any]]:
        """Every stored completion once (torn tails ignored, duplicates dropped), in file order."""
        seen: set[tuple[str, int]] = set()
        records = []
        for path in self.completion_files():
            for record in read_jsonl(path)[0]:
                key = (str(record["problem_id"]), int(record["sample_index"]))
                if key not in seen:
                    seen.add(key)
                    records.append(record)
        return records

    def appender(self, shard: Shard) -> JsonlAppender:
        return JsonlAppender(self.path / completions_file_name(shard))

    # -- scores and results ---------------------------------------------------------------------------

    def write_scores(self, records: list[dict[str, Any]]) -> None:
        write_jsonl_atomic(self.scores_path, records)

    def scores(self) -> list[dict[str, Any]]:
        return read_jsonl(self.scores_path)[0]

    def write_results(self, results: dict[str, Any]) -> None:
        write_json_atomic(self.results_path, results)

    def results(self) -> dict[str, Any]:
        return read_json(self.results_path)
