"""`evalkit merge` after a SLURM array: it names the shards that are missing or incomplete (label,
problems, samples); with --final it refuses an incomplete set (exit 2, nothing written); without it the
result is written as not final, as `evalkit run` does for a partial run."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from evalkit.core.run_config import Shard
from evalkit.planning import RunOptions, plan_tasks
from evalkit.runner import run
from evalkit.shard_status import shard_statuses
from tasks import get_task
from tests.evalkit.fake_backend import SeededAnswerBackend
from tests.evalkit.parallel.helpers import main_in_process

# 7 problems x 2 samples in 3 shards: shard 1 holds positions 0, 3, 6; shard 2: 1, 4; shard 3: 2, 5.
OPTIONS = RunOptions(backend="replay", model="m", n=2, limit=7, workers=1, from_file=__file__)


def run_shards(run_dir, *shards: Shard):
    for shard in shards:
        plans = plan_tasks(replace(OPTIONS, run_dir=str(run_dir), shard=shard), [get_task("arith-demo")])
        run(plans, SeededAnswerBackend(), workers=1)
    return plans[0].folder


def drop_problem(path, problem_id: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(x for x in lines if json.loads(x)["problem_id"] != problem_id))


@pytest.fixture
def partial(tmp_path):
    """Shards 1 and 3 of 3 ran (shard 3 lost its last problem's samples); shard 2 never ran."""
    folder = run_shards(tmp_path / "run", Shard(1, 3), Shard(3, 3))
    last_of_shard_3 = get_task("arith-demo").load()[5].id
    drop_problem(folder.path / "completions.shard-3-of-3.jsonl", last_of_shard_3)
    return folder


def test_statuses_name_each_shard_by_its_problems_and_samples(partial):
    described = [s.describe() for s in shard_statuses([partial]) if not s.complete]
    assert described == [
        "shard 2/3 is missing (0/4 samples of its 2 problems)",
        "shard 3/3 is incomplete (2/4 samples; 1/2 problems complete)",
    ]


def test_merge_names_the_missing_shards_and_writes_a_result_that_is_not_final(partial, monkeypatch, capsys):
    code, stderr = main_in_process(monkeypatch, capsys, "merge", str(partial.path), "--workers", "1")
    assert code == 0
    assert "shard 2/3 is missing (0/4 samples of its 2 problems)" in stderr
    assert "shard 3/3 is incomplete (2/4 samples; 1/2 problems complete)" in stderr
    assert "not a final result; the `evalkit run` command that made" in stderr
    assert partial.results().final is False


def test_merge_final_refuses_an_incomplete_set_and_writes_nothing(partial, tmp_path, monkeypatch, capsys):
    target = tmp_path / "merged"
    code, stderr = main_in_process(
        monkeypatch, capsys, "merge", str(partial.path), "--out", str(target), "--final", "--workers", "1"
    )
    assert code == 2
    [line] = stderr.strip().splitlines()
    assert line == (
        "error: not a final result: shard 2/3 is missing (0/4 samples of its 2 problems); shard 3/3 is "
        "incomplete (2/4 samples; 1/2 problems complete); run the missing shards (evalkit run ... --shard I/N "
        "into the same folder) and merge again, or merge without --final"
    )
    assert not target.exists()


def test_once_every_shard_ran_merge_final_writes_the_final_result(partial, monkeypatch, capsys):
    run_shards(partial.path, Shard(2, 3), Shard(3, 3))  # the missing shard, and the rest of shard 3
    code, stderr = main_in_process(
        monkeypatch, capsys, "merge", str(partial.path), "--final", "--workers", "1"
    )
    assert code == 0, stderr
    assert "missing" not in stderr and "incomplete" not in stderr
    assert partial.results().final is True and len(partial.completions()) == 14
    assert all(s.complete for s in shard_statuses([partial]))


def test_shards_in_separate_folders_are_counted_together(tmp_path):
    one = run_shards(tmp_path / "a", Shard(1, 2))
    two = run_shards(tmp_path / "b", Shard(2, 2))
    assert [s.complete for s in shard_statuses([one])] == [True, False]
    assert [s.complete for s in shard_statuses([one, two])] == [True, True]
