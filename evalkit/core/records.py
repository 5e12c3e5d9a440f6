"""What a run folder holds, as typed records: one line of completions.jsonl, one of scores.jsonl, the
header config.json and results.json (with its provenance).

Each record's `to_dict` gives the file's keys in the file's order and `from_dict` reads them back, so
`json_line(R.from_dict(d).to_dict())` reproduces a stored line byte for byte. Only RunFolder reads and
writes the files (run_folder.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, get_args

from evalkit.core.errors import DataError
from evalkit.core.run_config import RunConfig
from evalkit.core.types import AnswerType


def _require(what: str, cls: type, data: dict[str, Any], optional: tuple[str, ...] = ()) -> None:
    if not isinstance(data, dict):
        raise DataError(f"a {what} record must be a JSON object, got {type(data).__name__}")
    missing = [f.name for f in fields(cls) if f.name not in optional and f.name not in data]
    if missing:
        raise DataError(f"the {what} record lacks {', '.join(missing)}")


def _tuple(value: Any) -> tuple[int, ...] | None:
    return None if value is None else tuple(value)


@dataclass(frozen=True)
class CompletionRecord:
    """One stored sample (a line of completions.jsonl): the backend's Completion plus where it belongs."""

    problem_id: str
    sample_index: int
    seed: int
    prompt_hash: str  # stable_hash of the messages this sample saw
    text: str
    num_prompt_tokens: int
    num_generated_tokens: int
    finish_reason: str
    seconds: float
    gold: str  # this sample's gold (GPQA: its letter under its own option order)
    permutation: tuple[int, ...] | None  # GPQA: letter index -> original option index
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        return (str(self.problem_id), int(self.sample_index))

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["permutation"] = None if self.permutation is None else list(self.permutation)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompletionRecord:
        _require("completion", cls, data)
        values = {f.name: data[f.name] for f in fields(cls)}
        return cls(**{**values, "permutation": _tuple(values["permutation"])})


# ScoreRecord fields added after scores.jsonl first shipped: a line may lack them (read as None), and a
# None one is left out of the line, so lines written before them round-trip byte for byte.
_LATER_SCORE_FIELDS = ("source", "official", "official_extracted", "official_reason")


@dataclass(frozen=True)
class ScoreRecord:
    """One verdict (a line of scores.jsonl), with what metrics need beside it.

    `correct`/`extracted`/`reason` are evalkit's judgement; `source` says where its answer was found
    ("answer" after the thinking, "thinking" inside it). `official`/`official_extracted`/
    `official_reason` are the official (lighteval) judgement of the same response, stored beside ours
    and never used for our verdict; None where there is none (choice tasks, folders scored before it)."""

    problem_id: str
    sample_index: int
    correct: bool
    extracted: str | None
    reason: str
    gold: str
    finish_reason: str
    num_generated_tokens: int
    # GPQA: the letter -> option map of this sample, so maj@k groups wrong votes by option.
    # Folders scored before it existed lack the key: read as None.
    permutation: tuple[int, ...] | None = None
    source: str | None = None
    official: bool | None = None
    official_extracted: str | None = None
    official_reason: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (str(self.problem_id), int(self.sample_index))

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["permutation"] = None if self.permutation is None else list(self.permutation)
        return {k: v for k, v in data.items() if v is not None or k not in _LATER_SCORE_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreRecord:
        _require("score", cls, data, optional=("permutation", *_LATER_SCORE_FIELDS))
        values = {f.name: data.get(f.name) for f in fields(cls)}
        return cls(**{**values, "permutation": _tuple(values["permutation"])})


@dataclass(frozen=True)
class CheckerSpec:
    """What scoring needs to know beyond the completions (config.json "checker"), so re-scoring a folder
    never needs the task registry: the answer type, and the checker version and options the run was
    created with (the checker's `CheckerOptions.as_dict()`; not part of the run_id: scoring can be
    re-done with another checker or option). Folders written before evalkit stored it have none;
    folders written before the version and options moved here have only the answer type (None, {})."""

    answer_type: AnswerType
    checker_version: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"answer_type": self.answer_type}
        if self.checker_version is not None:
            data["checker_version"] = self.checker_version
            data["options"] = dict(self.options)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckerSpec:
        if not isinstance(data, dict) or data.get("answer_type") not in get_args(AnswerType):
            raise DataError(
                f"checker {data!r} has no valid answer_type (one of {', '.join(get_args(AnswerType))})"
            )
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise DataError(f"checker options {options!r} are not a JSON object")
        return cls(data["answer_type"], data.get("checker_version"), dict(options))


@dataclass(frozen=True)
class RunHeader:
    """config.json: written first, never changed afterwards. `problems` holds each problem's id and
    breakdown metadata (never prompts or options), so scoring and merge need no benchmark data."""

    schema_version: int
    run_id: str
    config: RunConfig
    created: str
    problems: list[dict[str, Any]]
    checker: CheckerSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "config": self.config.to_dict(),
            "created": self.created,
            "problems": self.problems,
        }
        if self.checker is not None:
            data["checker"] = self.checker.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunHeader:
        checker = data.get("checker")
        return cls(
            schema_version=data["schema_version"],
            run_id=data.get("run_id", ""),
            config=RunConfig.from_dict(data.get("config") or {}),
            created=data.get("created", ""),
            problems=list(data.get("problems", [])),
            checker=CheckerSpec.from_dict(checker) if checker is not None else None,
        )


@dataclass(frozen=True)
class ScoringInfo:
    """How the stored verdicts were made (provenance "scoring"). `mode` is the judgement of the stored
    verdicts: "evalkit" (folders re-scored with the removed `--mode lighteval` say "lighteval");
    `options` the checker options used (absent in folders scored before they existed)."""

    checker_version: str
    mode: str
    scored: int
    at: str
    options: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.options is None:
            del data["options"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoringInfo:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


_PROVENANCE_KEYS = (
    "software",
    "machine",
    "model_info",
    "started",
    "ended",
    "wall_seconds",
    "generated_tokens",
    "shard",
    "scoring",
)


@dataclass(frozen=True)
class Provenance:
    """What produced a result (results.json "provenance"). `extra` holds session notes written after the
    fixed keys (generated_this_session, merged_from); every key may be absent in hand-written folders."""

    software: dict[str, Any] | None = None
    machine: dict[str, Any] | None = None
    model_info: dict[str, Any] | None = None
    started: str | None = None
    ended: str | None = None
    wall_seconds: float | None = None
    generated_tokens: int | None = None
    shard: str | None = None
    scoring: ScoringInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _PROVENANCE_KEYS}
        data["scoring"] = self.scoring.to_dict() if self.scoring is not None else None
        return {**data, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        known = {name: data.get(name) for name in _PROVENANCE_KEYS}
        scoring = known.pop("scoring")
        return cls(
            **known,
            scoring=ScoringInfo.from_dict(scoring) if isinstance(scoring, dict) else None,
            extra={k: v for k, v in data.items() if k not in _PROVENANCE_KEYS},
        )


@dataclass(frozen=True)
class Results:
    """results.json: the run's metrics and provenance, rewritten atomically after every scoring."""

    schema_version: int
    run_id: str
    config: RunConfig
    provenance: Provenance
    final: bool
    metrics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "config": self.config.to_dict(),
            "provenance": self.provenance.to_dict(),
            "final": self.final,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        return cls(
            schema_version=data["schema_version"],
            run_id=data.get("run_id", ""),
            config=RunConfig.from_dict(data.get("config") or {}),
            provenance=Provenance.from_dict(data.get("provenance") or {}),
            final=bool(data.get("final", False)),
            metrics=data.get("metrics") or {},
        )
