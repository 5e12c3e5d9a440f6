"""The checker's options: the choices a user can make about how answers are judged.

They are part of a run's configuration (config.json's checker section), so two runs scored with
different options are never mistaken for one another.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class CheckerOptions:
    """`strict_thinking`: look for the answer only after the last `</think>`. Off by default: when the
    model closed its thinking and nothing answerable follows, the final box inside the thinking counts
    (verdict reason "answer_in_thinking", source "thinking"; EVAL_PROTOCOL.md)."""

    strict_thinking: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CheckerOptions:
        """Options stored by `as_dict`; keys this version does not know are refused (a newer evalkit)."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown checker option(s) {', '.join(unknown)}; upgrade evalkit")
        return cls(**data)


DEFAULT_OPTIONS = CheckerOptions()
