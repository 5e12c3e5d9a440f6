"""`replay` backend: completions read from a file instead of a model (`--backend replay --from FILE`).

It lets saved or published outputs be scored and tabled like any run. FILE is JSONL, one sample per line:
evalkit's own completions.jsonl works as is, and so does the simple form

    {"problem_id": "aime24-60", "sample_index": 0, "text": "... \\boxed{204}"}

with optional "finish_reason" ("stop" | "length" | "error", default "stop"), "num_generated_tokens" and
"num_prompt_tokens" (default 0), "seconds" and "extra". The first line for a (problem_id, sample_index)
wins. Every line is checked when the file is read, before anything runs: each must be a JSON object with
a string or integer problem_id, an integer sample_index >= 0, a string text (null is refused, not
stored as "None"), and well-formed optional fields; the file must be UTF-8.

The file is the run's model: its content hash is the run's model_revision, so a changed file is a
different run with its own folder. That is why generate() checks that the file holds every requested
sample BEFORE it replays any: a missing sample fails the run with nothing stored, instead of leaving a
folder that the fixed file (another run) would never resume.
"""

from __future__ import annotations

import hashlib
import json
import math
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


def _shown(value: Any) -> str:
    """A value as the file spells it (null, "3", 2.5), short."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _line_problem(record: Any) -> str | None:
    """What is wrong with one line of a replay file, or None."""
    if not isinstance(record, dict):
        return f"is not a JSON object (got {type(record).__name__}); each line is one sample's object"
    missing = [key for key in ("problem_id", "sample_index", "text") if key not in record]
    if missing:
        return f"lacks {', '.join(missing)}"
    problem_id, index, text = record["problem_id"], record["sample_index"], record["text"]
    if isinstance(problem_id, bool) or not isinstance(problem_id, str | int):
        return f"has problem_id {_shown(problem_id)}; it must be a string (or an integer)"
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        return f"has sample_index {_shown(index)}; it must be an integer >= 0"
    if not isinstance(text, str):
        return f'has text {_shown(text)}; it must be a string (write "" for an empty completion)'
    if record.get("finish_reason", "stop") not in FINISH_REASONS:
        return f"has finish_reason {_shown(record['finish_reason'])}; use one of {', '.join(FINISH_REASONS)}"
    for key in ("num_prompt_tokens", "num_generated_tokens"):
        value = record.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            return f"has {key} {_shown(value)}; it must be an integer >= 0"
    seconds = record.get("seconds")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds)
    ):
        return f"has seconds {_shown(seconds)}; it must be a finite number"
    if record.get("extra") is not None and not isinstance(record["extra"], dict):
        return f"has extra {_shown(record['extra'])}; it must be a JSON object"
    return None


def read_replay_file(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """(problem_id, sample_index) -> record. A torn last line (killed writer) is ignored; a complete last
    line without its newline (a file written by another tool) is kept. Any malformed line is a
    BackendError naming the file, the line and the field."""
    if not path.is_file():
        raise BackendError(f"replay file {path} not found; pass --from FILE with a completions JSONL")
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for number, record in read_jsonl_numbered(path, keep_unterminated=True)[0]:
        problem = _line_problem(record)
        if problem is not None:
            raise BackendError(f"{path}:{number} {problem}; fix that line (format: model_backends/replay.py)")
        table.setdefault((str(record["problem_id"]), record["sample_index"]), record)
    return table


class ReplayBackend:
    name = "replay"

    def __init__(self, path: Path, model: str | None = None) -> None:
        self.path = path
        self.model = model
        self.records = read_replay_file(path)
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    def _find(self, request_id: str, sample_index: int) -> tuple[dict[str, Any] | None, str]:
        """(record or None, problem id). Runner convention: request_id is the problem id, or
        "<problem id>#<sample index>" when each sample has its own request."""
        suffix = f"#{sample_index}"
        candidates = [request_id]
        if request_id.endswith(suffix):
            candidates.append(request_id[: -len(suffix)])
        for problem_id in candidates:
            record = self.records.get((problem_id, sample_index))
            if record is not None:
                return record, problem_id
        return None, candidates[-1]

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        requests = list(requests)  # every sample is looked up before the first is replayed
        wanted = [(request.request_id, i) for request in requests for i in request.sample_indices]
        lacking = []
        for request_id, sample_index in wanted:
            record, problem_id = self._find(request_id, sample_index)
            if record is None:
                lacking.append((problem_id, sample_index))
        if lacking:
            first = ", ".join(f"sample {i} of {pid!r}" for pid, i in lacking[:3])
            more = f" and {len(lacking) - 3} more" if len(lacking) > 3 else ""
            raise BackendError(
                f"replay file {self.path} lacks {len(lacking)} of the {len(wanted)} requested samples "
                f"({first}{more}); add them to the file or lower --n / --limit"
            )
        for request in requests:
            for sample_index in request.sample_indices:
                record, _ = self._find(request.request_id, sample_index)
                assert record is not None  # checked above
                yield Completion(
                    request_id=request.request_id,
                    sample_index=sample_index,
                    text=record["text"],
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
