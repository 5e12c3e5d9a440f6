"""Reading benchmark rows: a local data folder first, the Hugging Face Hub (pinned revisions) second.

Every reader validates what it returns: required fields present, ids unique, and the known row count.
Errors are DataError with one line naming the file (and line) and the fix.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.core.errors import DataError
from evalkit.core.settings import DATA_DIR_ENV

DATA_DIR_HINT = (
    f"pass --data-dir DIR or set {DATA_DIR_ENV}=DIR, where DIR holds aime24.jsonl, aime25.jsonl, "
    "aime26.jsonl, hmmt_feb25.jsonl, amc23.jsonl, math500.jsonl and gpqa/dataset.zip (the layout "
    "described in the README's data section)"
)


@dataclass(frozen=True)
class HubSource:
    """A dataset on the Hugging Face Hub, pinned to one commit so the rows cannot change under us."""

    repo: str
    revision: str
    split: str
    config: str | None = None
    gated: bool = False

    def __str__(self) -> str:
        return f"{self.repo}@{self.revision[:12]}"


@dataclass(frozen=True)
class RowSpec:
    """What a valid set of rows looks like."""

    required: tuple[str, ...]
    id_field: str
    expected_count: int
    integer_fields: tuple[str, ...] = ()  # must hold an integer (AIME answers): 25, "25", 25.0 — not 25.7


_INTEGER_TEXT = re.compile(r"[+-]?\d+(\.0*)?")


def as_integer(value: object) -> int | None:
    """The integer a stored value denotes (25, 25.0, "25", "025", "25.0"), or None (25.7, "x", True)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(float(value)) if "." in value else int(value)
    return None


def read_jsonl(path: Path, spec: RowSpec) -> list[dict]:
    """Rows of a JSONL file, validated line by line (blank lines are skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc}); re-copy the file") from exc
    if not text.strip():
        raise DataError(f"{path}: file is empty; expected {spec.expected_count} JSON lines — re-copy it")
    rows: list[dict] = []
    line_of_id: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{lineno}: invalid JSON ({exc.msg}); the file may be truncated — re-copy it"
            ) from exc
        if not isinstance(row, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        _check_row(row, f"{path}:{lineno}", spec, line_of_id, lineno)
        rows.append(row)
    check_count(rows, str(path), spec)
    return rows


def read_csv_in_zip(path: Path, member: str, password: str, spec: RowSpec) -> list[dict]:
    """Rows of a CSV inside a password-protected zip, decrypted in memory only (never written out)."""
    try:
        with zipfile.ZipFile(path) as archive:
            blob = archive.read(member, pwd=password.encode())
    except KeyError as exc:
        raise DataError(f"{path}: no member {member}; is this the original GPQA dataset.zip?") from exc
    except (RuntimeError, zlib.error, zipfile.BadZipFile) as exc:
        # A wrong password usually fails the 1-byte check (RuntimeError "Bad password"); rarely it passes
        # that check and the decompressor or the CRC check fails instead.
        raise DataError(f"{path}: cannot decrypt {member} ({exc}); wrong password or damaged zip") from exc
    reader = csv.DictReader(io.StringIO(blob.decode("utf-8")))
    rows = list(reader)
    line_of_id: dict[str, int] = {}
    for index, row in enumerate(rows, start=1):
        _check_row(row, f"{path}!{member} row {index}", spec, line_of_id, index)
    check_count(rows, f"{path}!{member}", spec)
    return rows


# Hub rows -> rows in the local file's form (field names, types, row selection); the identity by default.
HubAdapter = Callable[[list[dict]], list[dict]]


def read_hub(source: HubSource, spec: RowSpec, adapt: HubAdapter | None = None) -> list[dict]:
    """Rows from the Hub through `datasets`, mapped by `adapt` to the local file's form and validated like
    it; raises DataError with the reason (never returns partial data)."""
    if _env_true("HF_HUB_OFFLINE") or _env_true("HF_DATASETS_OFFLINE"):
        raise DataError(f"Hub {source}: offline mode is set (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)")
    try:
        import datasets

        table = datasets.load_dataset(
            source.repo, source.config, split=source.split, revision=source.revision
        )
    except Exception as exc:  # network, auth, missing revision: all end the same way for the user
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
        gated = (
            f"; {source.repo} is gated: accept its terms at https://huggingface.co/datasets/{source.repo} "
            "and run `huggingface-cli login` (or set HF_TOKEN)"
            if source.gated
            else ""
        )
        raise DataError(f"Hub {source}: {reason}{gated}") from exc
    rows = [dict(row) for row in table]
    if adapt is not None:
        try:
            rows = adapt(rows)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"Hub {source}: its rows do not have the expected layout ({type(exc).__name__}: {exc}); "
                "use the local file instead"
            ) from exc
    line_of_id: dict[str, int] = {}
    for index, row in enumerate(rows, start=1):
        _check_row(row, f"Hub {source} row {index}", spec, line_of_id, index)
    check_count(rows, f"Hub {source}", spec)
    return rows


def load_rows(
    task_name: str,
    data_dir: Path | None,
    local_file: str,
    read_local: Callable[[Path], list[dict]],
    hub: HubSource,
    spec: RowSpec,
    adapt_hub: HubAdapter | None = None,
) -> list[dict]:
    """Local file if it exists, else the Hub (its rows mapped by `adapt_hub` to the local form); when both
    fail, one message says where it looked and the fix.

    A local file that exists but is broken is an error right away (no silent switch to other data).
    """
    if data_dir is not None:
        path = data_dir / local_file
        if path.is_file():
            return read_local(path)
        looked = f"no {path}"
    else:
        looked = f"no local data folder (--data-dir / {DATA_DIR_ENV} not set)"
    try:
        return read_hub(hub, spec, adapt_hub)
    except DataError as exc:
        raise DataError(f"no data for {task_name}: {looked}, and {exc}. Fix: {DATA_DIR_HINT}") from exc


def check_count(rows: Sequence[dict], where: str, spec: RowSpec) -> None:
    if len(rows) != spec.expected_count:
        raise DataError(
            f"{where}: expected {spec.expected_count} problems, found {len(rows)}; "
            "the file is incomplete or a different version — re-copy it"
        )


def _check_row(row: dict, where: str, spec: RowSpec, line_of_id: dict[str, int], position: int) -> None:
    missing = [name for name in spec.required if row.get(name) is None or row.get(name) == ""]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(repr(m) for m in missing)}")
    for name in spec.integer_fields:
        if as_integer(row[name]) is None:
            raise DataError(
                f"{where}: {name} {row[name]!r} is not an integer (this task's answers are integers); "
                "fix that row or re-copy the file"
            )
    row_id = str(row[spec.id_field])
    if row_id in line_of_id:
        raise DataError(f"{where}: duplicate id {row_id!r} (first seen at {line_of_id[row_id]})")
    line_of_id[row_id] = position


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def matharena_rows(rows: list[dict], answer: Callable[[object], object] = str) -> list[dict]:
    """MathArena's Hub layout (`problem_idx` 1..N, `problem`, `answer`) in the local files' form: id
    "0".."N-1" (problem_idx - 1), sorted by problem_idx; `answer` converted by `answer`."""
    ordered = sorted(rows, key=lambda row: int(row["problem_idx"]))
    return [
        {"id": str(int(row["problem_idx"]) - 1), "problem": row["problem"], "answer": answer(row["answer"])}
        for row in ordered
    ]
