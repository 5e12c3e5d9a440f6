"""The rows of a task file's data: a local .jsonl / .csv / .parquet file, or a pinned Hub dataset
(`hub:owner/name@revision` + `split`). Each row comes with a label naming where it is (file and line or
row) for error messages; every problem is one line naming the task file, the key and the fix.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.identity import file_sha256

SUFFIXES = (".jsonl", ".csv", ".parquet")
HUB_PREFIX = "hub:"


class TaskFileError(EvalkitError):
    """A mistake in a user's task file or its data: one line naming the file, the key and the fix."""


@dataclass(frozen=True)
class DataSource:
    """Where a task file's rows come from. `path` for a local file; `repo`, `revision`, `split` for the Hub."""

    spec: str  # as written in the task file
    path: Path | None = None
    repo: str | None = None
    revision: str | None = None
    split: str | None = None

    @property
    def fingerprint(self) -> str:
        """What identifies the data: a local file's sha256, or the pinned Hub coordinates."""
        if self.path is not None:
            return file_sha256(self.path)
        return f"hub:{self.repo}@{self.revision}:{self.split}"

    def describe(self) -> str:
        return str(self.path) if self.path is not None else f"hub:{self.repo}@{self.revision} ({self.split})"


def parse_source(task_file: Path, data: str, split: str | None) -> DataSource:
    """The DataSource a task file's `data` (and `split`) names; checks that a local file exists."""
    if data.startswith(HUB_PREFIX):
        target = data[len(HUB_PREFIX) :]
        repo, sep, revision = target.partition("@")
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise TaskFileError(
                f"{task_file}: key 'data' = {data!r} is not a Hub dataset; write "
                '"hub:owner/name@revision" (a commit hash pins the rows)'
            )
        if not sep or not revision:
            raise TaskFileError(
                f"{task_file}: key 'data' = {data!r} has no revision; pin one: \"hub:{repo}@<commit>\" "
                "(an unpinned dataset can change under the run)"
            )
        if not split:
            raise TaskFileError(
                f"{task_file}: key 'split' is missing; a Hub dataset needs one, e.g. split = \"test\""
            )
        return DataSource(spec=data, repo=repo, revision=revision, split=split)
    if split is not None:
        raise TaskFileError(
            f"{task_file}: key 'split' is only for Hub data (data = \"hub:owner/name@revision\"); remove it"
        )
    path = Path(data).expanduser()
    if not path.is_absolute():
        path = task_file.parent / path
    if path.suffix.lower() not in SUFFIXES:
        raise TaskFileError(
            f"{task_file}: key 'data' = {data!r} has an unknown format; use a {', '.join(SUFFIXES)} file "
            'or "hub:owner/name@revision"'
        )
    if not path.is_file():
        raise TaskFileError(
            f"{task_file}: key 'data' names {path}, which does not exist; fix the path (relative paths "
            "are relative to the task file's folder)"
        )
    return DataSource(spec=data, path=path.resolve())


def read_rows(task_file: Path, source: DataSource) -> list[tuple[str, dict]]:
    """(where, row) for every row of the data, in order."""
    if source.path is None:
        return _read_hub(task_file, source)
    suffix = source.path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(task_file, source.path)
    if suffix == ".csv":
        return _read_csv(task_file, source.path)
    return _read_parquet(task_file, source.path)


def _read_text(task_file: Path, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskFileError(
            f"{task_file}: key 'data': cannot read {path} ({exc}); give a readable UTF-8 file"
        ) from exc


def _read_jsonl(task_file: Path, path: Path) -> list[tuple[str, dict]]:
    rows = []
    for lineno, line in enumerate(_read_text(task_file, path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskFileError(
                f"{task_file}: key 'data': {path}:{lineno} is not valid JSON ({exc.msg}); fix that line "
                "(one JSON object per line)"
            ) from exc
        if not isinstance(row, dict):
            raise TaskFileError(
                f"{task_file}: key 'data': {path}:{lineno} is a {type(row).__name__}, not a JSON object; "
                "write one object per line"
            )
        rows.append((f"{path}:{lineno}", row))
    return rows


def _read_csv(task_file: Path, path: Path) -> list[tuple[str, dict]]:
    import io

    reader = csv.DictReader(io.StringIO(_read_text(task_file, path), newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise TaskFileError(
            f"{task_file}: key 'data': {path} is not valid CSV ({exc}); fix the file"
        ) from exc
    # Row k of the table is on line k + 1 when no cell spans lines (the header is line 1).
    return [(f"{path} row {index}", _drop_empty_key(row)) for index, row in enumerate(rows, start=1)]


def _drop_empty_key(row: dict) -> dict:
    # csv puts surplus cells under the key None; they have no column name to be addressed by
    return {key: value for key, value in row.items() if key is not None}


def _read_parquet(task_file: Path, path: Path) -> list[tuple[str, dict]]:
    try:
        import pandas as pd
        import pyarrow  # noqa: F401  (pandas needs it for parquet; say so in one line)
    except ImportError as exc:
        raise TaskFileError(
            f"{task_file}: key 'data' names a .parquet file, which needs pyarrow ({exc}); "
            "`pip install pyarrow`, or convert the data to .jsonl or .csv"
        ) from exc
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # a damaged or non-parquet file: arrow raises many kinds
        raise TaskFileError(
            f"{task_file}: key 'data': cannot read {path} as parquet ({type(exc).__name__}: {exc}); "
            "re-export the file"
        ) from exc
    rows = json.loads(frame.to_json(orient="records", force_ascii=False))  # plain Python values
    return [(f"{path} row {index}", row) for index, row in enumerate(rows, start=1)]


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _read_hub(task_file: Path, source: DataSource) -> list[tuple[str, dict]]:
    where = f"hub:{source.repo}@{source.revision}"
    if _env_true("HF_HUB_OFFLINE") or _env_true("HF_DATASETS_OFFLINE"):
        raise TaskFileError(
            f"{task_file}: key 'data' = {source.spec!r}: offline mode is set (HF_HUB_OFFLINE / "
            "HF_DATASETS_OFFLINE); unset it, or download the rows to a local .jsonl and point data at it"
        )
    try:
        import datasets

        table = datasets.load_dataset(source.repo, split=source.split, revision=source.revision)
    except Exception as exc:  # network, auth, missing revision or split
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
        raise TaskFileError(
            f"{task_file}: key 'data' = {source.spec!r} (split {source.split!r}) could not be loaded "
            f"({reason}); check the dataset, revision and split, or use a local file"
        ) from exc
    return [(f"{where} row {index}", dict(row)) for index, row in enumerate(table, start=1)]
