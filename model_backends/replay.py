"""`replay` backend: completions read from a file instead of a model (`--backend replay --from FILE`).

It lets saved or published outputs be scored and tabled like any run. FILE is JSONL, one sample per line:
evalkit's own completions.jsonl works as is, and so does the simple form

    {"problem_id": "aime24-60", "sample_index": 0, "text": "... \\boxed{204}"}

with optional "finish_reason" ("stop" | "length" | "error", default "stop"), "num_generated_tokens" and
"num_prompt_tokens" (default 0), "seconds" and "extra". The first line for a (problem_id, sample_index)
wins. A requested sample missing from the file stops the run with a BackendError naming it (the samples
replayed before it are kept, so fixing the file and re-running resumes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from evalkit.core.errors import BackendError
from evalkit.core.files import read_jsonl_numbered
from evalkit.core.types import Completion, GenerationRequest
from model_backends.registry import BackendOptions

FINISH_REASONS = ("stop", "length", "error")


def create(options: BackendOptions) -> ReplayBackend:
    if not options.from_file:
        raise BackendError("the replay backend needs --from FILE (a completions JSONL)")
    return ReplayBackend(Path(options.from_file).expanduser(), model=options.model)


def read_replay_file(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """(problem_id, sample_index) -> record. A torn last line (killed writer) is ignored; a complete last
    line without its newline (a file written by another tool) is kept."""
    if not path.is_file():
        raise BackendError(f"replay file {path} not found; pass --from FILE with a completions JSONL")
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for number, record in read_jsonl_numbered(path, keep_unterminated=True)[0]:
        missing = [key for key in ("problem_id", "sample_index", "text") if key not in record]
        if missing:
            raise BackendError(
                f"{path}: line {number} lacks {', '.join(missing)}; see `model_backends/replay.py`"
            )
        if record.get("finish_reason", "stop") not in FINISH_REASONS:
            raise BackendError(f"{path}: line {number} has finish_reason {record['finish_reason']!r}")
        table.setdefault((str(record["problem_id"]), int(record["sample_index"])), record)
    return table


class ReplayBackend:
    name = "replay"

    def __init__(self, path: Path, model: str | None = None) -> None:
        self.path = path
        self.model = model
        self.records = read_replay_file(path)
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    def _lookup(self, request_id: str, sample_index: int) -> dict[str, Any]:
        # Runner convention: request_id is the problem id, or "<problem id>#<sample index>" per sample.
        suffix = f"#{sample_index}"
        candidates = [request_id]
        if request_id.endswith(suffix):
            candidates.append(request_id[: -len(suffix)])
        for problem_id in candidates:
            record = self.records.get((problem_id, sample_index))
            if record is not None:
                return record
        raise BackendError(
            f"replay file {self.path} has no sample {sample_index} of problem {candidates[-1]!r}; "
            "add it or lower --n / --limit"
        )

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        for request in requests:
            for sample_index in request.sample_indices:
                record = self._lookup(request.request_id, sample_index)
                yield Completion(
                    request_id=request.request_id,
                    sample_index=sample_index,
                    text=str(record["text"]),
                    num_prompt_tokens=int(record.get("num_prompt_tokens") or 0),
                    num_generated_tokens=int(record.get("num_generated_tokens") or 0),
                    finish_reason=record.get("finish_reason", "stop"),
                    seconds=float(record.get("seconds") or 0.0),
                    extra=dict(record.get("extra") or {}),
                )

    def model_info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model,
            "path": str(self.path.resolve()),
            "sha256": self.sha256,
            "records": len(self.records),
        }
