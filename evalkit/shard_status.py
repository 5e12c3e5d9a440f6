"""Which shards of a run are stored, for `evalkit merge`: per shard label (from the shard files found),
how many of its problems and samples are there, counted from the samples themselves (wherever they are
stored: a shard finished by a later single-process run counts as finished)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from evalkit.core.run_config import Shard
from evalkit.core.run_folder import RunFolder


@dataclass(frozen=True)
class ShardStatus:
    shard: Shard
    problems: int  # problems in this shard
    complete_problems: int  # of them, with all n samples stored
    samples: int  # stored samples of this shard
    expected: int  # problems x n
    has_file: bool  # a completions file of this shard exists in one of the folders

    @property
    def complete(self) -> bool:
        return self.samples == self.expected

    def describe(self) -> str:
        name = "the run" if self.shard.is_whole else f"shard {self.shard.label}"
        if self.samples == 0:
            state = "missing" if not self.has_file or self.shard.is_whole else "empty"
            return f"{name} is {state} (0/{self.expected} samples of its {self.problems} problems)"
        return (
            f"{name} is incomplete ({self.samples}/{self.expected} samples; "
            f"{self.complete_problems}/{self.problems} problems complete)"
        )


def shard_statuses(folders: Sequence[RunFolder]) -> list[ShardStatus]:
    """Every shard of every shard count seen in the folders' files (the whole run when there is none)."""
    first = folders[0]
    n = first.config().n
    ids = [problem["id"] for problem in first.problems()]
    stored: dict[str, set[int]] = {}
    for folder in folders:
        for record in folder.completions():
            if record.sample_index < n:
                stored.setdefault(record.problem_id, set()).add(record.sample_index)
    present = {shard for folder in folders for shard in folder.shards_present()}
    counts = sorted({shard.count for shard in present}) or [1]
    statuses = []
    for count in counts:
        for index in range(1, count + 1):
            shard = Shard(index, count)
            mine = [pid for position, pid in enumerate(ids) if shard.keeps(position)]
            have = [len(stored.get(pid, ())) for pid in mine]
            statuses.append(
                ShardStatus(
                    shard=shard,
                    problems=len(mine),
                    complete_problems=sum(h == n for h in have),
                    samples=sum(have),
                    expected=len(mine) * n,
                    has_file=shard in present,
                )
            )
    return statuses


def incomplete(statuses: Sequence[ShardStatus]) -> list[ShardStatus]:
    return [status for status in statuses if not status.complete]
