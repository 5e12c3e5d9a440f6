"""The parent's view of a split run: the samples stored in its run folders, read as the workers append
them (only the new bytes of each completions file), counted per shard.

The files are the truth: a worker that dies and restarts, a Ray task retried on another node, or a
shard finished by hand all show up as what is stored, never as what a worker claimed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.core.errors import DataError
from evalkit.core.records import CompletionRecord
from evalkit.planning import TaskPlan


@dataclass
class _Tail:
    offset: int = 0


class StoredSamples:
    """Samples stored for every plan, per shard (index 1..count), with the tokens generated since start."""

    def __init__(self, plans: Sequence[TaskPlan], count: int) -> None:
        self.plans, self.count = list(plans), count
        self._owner: list[dict[str, int]] = []  # per plan: problem id -> shard index
        self.totals = [0] * (count + 1)  # index 0 unused
        for plan in self.plans:
            owner = {p.id: position % count + 1 for position, p in enumerate(plan.problems)}
            self._owner.append(owner)
            for shard in owner.values():
                self.totals[shard] += plan.config.n
        self._seen: list[set[tuple[str, int]]] = [set() for _ in self.plans]
        self._tails: dict[Path, _Tail] = {}
        self.done = [0] * (count + 1)
        self.new_per_plan = [0] * len(self.plans)
        self.new_tokens = 0
        self._baseline = True
        self.poll()  # what was stored before this session (a resume)
        self._baseline = False
        self.at_start = sum(self.done)
        self.started = time.perf_counter()

    @property
    def total(self) -> int:
        return sum(self.totals)

    @property
    def stored(self) -> int:
        return sum(self.done)

    @property
    def new_samples(self) -> int:
        return self.stored - self.at_start

    def poll(self) -> int:
        """Read what was appended since the last poll; returns the number of new samples."""
        new = 0
        for index, plan in enumerate(self.plans):
            for path in plan.folder.completion_files():
                for record in self._read_new(path):
                    new += self._count(index, plan, record)
        return new

    def _count(self, index: int, plan: TaskPlan, record: CompletionRecord) -> int:
        shard = self._owner[index].get(record.problem_id)
        if shard is None or record.sample_index >= plan.config.n or record.key in self._seen[index]:
            return 0
        self._seen[index].add(record.key)
        self.done[shard] += 1
        if not self._baseline:
            self.new_per_plan[index] += 1
            self.new_tokens += int(record.num_generated_tokens)
        return 1

    def _read_new(self, path: Path) -> list[CompletionRecord]:
        tail = self._tails.setdefault(path, _Tail())
        try:
            with path.open("rb") as handle:
                handle.seek(0, 2)
                if handle.tell() < tail.offset:  # rewritten shorter than what was read: read it again
                    tail.offset = 0
                handle.seek(tail.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []  # nothing complete yet (a line being written is read next time)
        tail.offset += end + 1
        records = []
        for line in data[: end + 1].splitlines():
            try:
                records.append(CompletionRecord.from_dict(json.loads(line)))
            except (ValueError, TypeError, DataError):
                continue  # a damaged line is the scorer's to report; progress just does not count it
        return records

    def rate(self) -> float:
        """Generated tokens per second of this session (model loading included: the honest figure)."""
        return self.new_tokens / max(time.perf_counter() - self.started, 1e-9)

    def eta_seconds(self) -> float | None:
        """Remaining samples at this session's pace so far (start-up included, so it never reads 0 when
        a problem's forked samples arrive together); None before the first new sample."""
        if self.new_samples < 1:
            return None
        pace = (time.perf_counter() - self.started) / self.new_samples
        return pace * (self.total - self.stored)
