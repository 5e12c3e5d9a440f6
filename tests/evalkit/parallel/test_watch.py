"""StoredSamples, the parent's progress source: it counts what is stored (read from the shard files as
they grow), per shard, once per sample, and never a torn line."""

from __future__ import annotations

from evalkit.core.files import json_line
from evalkit.core.records import CompletionRecord
from evalkit.core.run_config import Shard
from evalkit.parallel.watch import StoredSamples
from evalkit.planning import RunOptions, plan_tasks
from tasks import get_task


def planned(tmp_path):
    options = RunOptions(backend="replay", model="m", n=2, limit=4, out=str(tmp_path), from_file=__file__)
    [plan] = plan_tasks(options, [get_task("arith-demo")])
    plan.folder.initialise(plan.config, plan.problem_index(), checker=plan.checker)
    return plan


def line(problem_id: str, index: int, tokens: int = 10) -> str:
    record = CompletionRecord(problem_id, index, 1, "h", "text", 3, tokens, "stop", 0.1, "4", None, {})
    return json_line(record.to_dict())


def test_counts_per_shard_from_the_files_as_they_grow(tmp_path):
    plan = planned(tmp_path)
    ids = [p.id for p in plan.problems]  # shard 1 of 2: positions 0 and 2; shard 2: 1 and 3
    shard_1 = plan.folder.path / "completions.shard-1-of-2.jsonl"
    shard_1.write_text(line(ids[0], 0))  # stored before this session: a resume
    stored = StoredSamples([plan], 2)
    assert (stored.total, stored.totals[1:], stored.done[1:], stored.at_start) == (8, [4, 4], [1, 0], 1)

    whole = line(ids[2], 1, tokens=7)
    with shard_1.open("a") as out:
        out.write(line(ids[0], 1) + whole[:20])  # the second line is still being written
    assert stored.poll() == 1 and stored.done[1:] == [2, 0]
    with shard_1.open("a") as out:
        out.write(whole[20:])
    assert stored.poll() == 1 and stored.done[1:] == [3, 0] and stored.new_tokens == 17

    # completions.jsonl repeats a stored sample (counted once) and holds one of shard 2 (counted there);
    # sample 5 is beyond n and a problem outside the run is not counted at all.
    (plan.folder.path / "completions.jsonl").write_text(
        line(ids[0], 0) + line(ids[3], 0) + line(ids[1], 5) + line("elsewhere", 0)
    )
    assert stored.poll() == 1 and stored.done[1:] == [3, 1]
    assert stored.stored == 4 and stored.new_samples == 3 and stored.new_per_plan == [3]
    assert stored.poll() == 0  # nothing new: nothing counted twice


def test_a_file_rewritten_shorter_is_read_again_without_double_counting(tmp_path):
    plan = planned(tmp_path)
    ids = [p.id for p in plan.problems]
    path = plan.folder.path / "completions.shard-2-of-2.jsonl"
    path.write_text(line(ids[1], 0) + line(ids[1], 1) + line(ids[3], 0))
    stored = StoredSamples([plan], 2)
    assert stored.done[2] == 3
    path.write_text(line(ids[3], 1))  # e.g. replaced by hand
    assert stored.poll() == 1 and stored.done[2] == 4


def test_shard_owners_match_the_shard_rule(tmp_path):
    plan = planned(tmp_path)
    stored = StoredSamples([plan], 3)
    for index in (1, 2, 3):
        kept = [p for position, p in enumerate(plan.problems) if Shard(index, 3).keeps(position)]
        assert stored.totals[index] == len(kept) * plan.config.n
