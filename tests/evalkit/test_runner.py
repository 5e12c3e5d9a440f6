"""The runner end to end on arith-demo with the seeded test backend: hand-computed Pass@1, resume after a
torn write, config guard, request shapes, shards + merge, and replay of a stored run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from evalkit.core.errors import BackendError, EvalkitError
from evalkit.core.records import Results
from evalkit.core.run_config import Shard
from evalkit.core.run_folder import RunFolder
from evalkit.core.types import Completion, SampleView, derive_seed
from evalkit.generation import build_requests, completion_record
from evalkit.merge import merge_runs
from evalkit.planning import RunOptions, plan_tasks
from evalkit.runner import run
from evalkit.scoring import CHECKER_VERSION
from model_backends.registry import BackendOptions
from model_backends.replay import create as create_replay
from tasks import get_task
from tests.evalkit.fake_backend import SeededAnswerBackend, expected_outcome

N = 4
LIMIT = 12  # 12 problems x 4 samples keeps every run well under a second of generation


def options(out: Path, **changes) -> RunOptions:
    base = RunOptions(
        backend="replay",  # any registered name; the tests pass the backend object themselves
        model="seeded-test",
        n=N,
        limit=LIMIT,
        max_new_tokens=64,
        out=str(out),
        workers=1,
        from_file=__file__,  # replay's identity needs a file; the seeded backend ignores it
    )
    return replace(base, **changes)


def plan(opts: RunOptions) -> list:
    return plan_tasks(opts, [get_task("arith-demo")])


def run_with(opts: RunOptions, backend) -> list:
    return run(plan(opts), backend, workers=opts.workers)


def run_seeded(opts: RunOptions, calls: list | None = None) -> tuple[RunFolder, Results]:
    [(task_plan, results)] = run_with(opts, SeededAnswerBackend(calls=calls))
    return task_plan.folder, results


def comparable(folder: RunFolder) -> tuple[list, dict]:
    """Everything that must match between two runs of the same config (no timings)."""
    return sorted(folder.scores(), key=lambda r: r.key), folder.results().metrics


def sorted_completions(folder: RunFolder) -> list[dict]:
    return sorted(folder.completions(), key=lambda r: r.key)


def test_pass_at_1_equals_hand_computation(tmp_path):
    folder, results = run_seeded(options(tmp_path))
    problems = get_task("arith-demo").load()[:LIMIT]
    outcomes = [[expected_outcome(derive_seed(0, "arith-demo", p.id, i)) for i in range(N)] for p in problems]
    per_problem = [sum(o == "correct" for o in row) / N for row in outcomes]
    flat = [o for row in outcomes for o in row]
    assert 0 < sum(per_problem) < LIMIT  # the rule gives a mix, so the test can tell right from wrong

    metrics = results.metrics
    assert metrics["pass_at_1"] == pytest.approx(100 * sum(per_problem) / LIMIT)
    assert metrics["truncation_rate"] == pytest.approx(100 * flat.count("length") / len(flat))
    assert [row["correct"] for row in metrics["per_problem"]] == [
        sum(o == "correct" for o in r) for r in outcomes
    ]
    assert results.final is True and metrics["complete"] is True
    config = json.loads((folder.path / "config.json").read_text())
    assert config["run_id"] == folder.path.name == results.run_id
    assert config["checker"] == {  # re-scoring needs no task registry; the checker is not in the run_id
        "answer_type": "integer",
        "checker_version": CHECKER_VERSION,
        "options": {"strict_thinking": False},
    }
    assert "checker_version" not in config["config"]
    assert [p["id"] for p in config["problems"]] == [p.id for p in problems]
    stored = folder.completions()
    assert len(stored) == LIMIT * N
    first = stored[0]
    assert first.seed == derive_seed(0, "arith-demo", first.problem_id, first.sample_index)
    assert first.permutation is None and first.gold == problems[int(first.problem_id[-3:])].gold
    provenance = results.provenance
    assert provenance.software["python"] and provenance.model_info["model"] == "seeded-test"
    assert provenance.generated_tokens == sum(r.num_generated_tokens for r in stored)


def test_one_request_per_problem_with_all_missing_samples(tmp_path):
    calls: list = []
    run_seeded(options(tmp_path), calls)
    assert [c.request_id for c in calls] == [p.id for p in get_task("arith-demo").load()[:LIMIT]]
    assert {c.sample_indices for c in calls} == {(0, 1, 2, 3)}
    rerun_calls: list = []
    run_seeded(options(tmp_path), rerun_calls)
    assert rerun_calls == []  # a finished run regenerates nothing


def test_torn_last_line_is_dropped_and_redone(tmp_path):
    reference, _ = run_seeded(options(tmp_path / "ref"))
    folder, _ = run_seeded(options(tmp_path / "cut"))
    path = folder.path / "completions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-5]) + lines[-5][: len(lines[-5]) // 2])  # as if killed mid-write
    (folder.path / "results.json").unlink()
    calls: list = []
    folder, results = run_seeded(options(tmp_path / "cut"), calls)
    assert sum(c.n for c in calls) == 5  # the torn one plus the four never written
    assert path.read_text().endswith("\n")
    keys = [
        (r["problem_id"], r["sample_index"]) for r in (json.loads(x) for x in path.read_text().splitlines())
    ]
    assert len(keys) == len(set(keys)) == LIMIT * N
    assert comparable(folder) == comparable(reference)
    assert sorted_completions(folder) == sorted_completions(reference)


def test_other_config_in_the_same_folder_is_refused(tmp_path):
    run_seeded(options(tmp_path, run_dir=str(tmp_path / "fixed")))
    before = sorted(p.name for p in (tmp_path / "fixed").iterdir())
    with pytest.raises(EvalkitError, match=r"temperature: 0\.6 -> 0\.7"):
        plan(options(tmp_path, run_dir=str(tmp_path / "fixed"), temperature=0.7))
    assert sorted(p.name for p in (tmp_path / "fixed").iterdir()) == before


def test_shards_merged_equal_the_unsharded_run(tmp_path):
    whole, _ = run_seeded(options(tmp_path / "whole"))
    one, one_results = run_seeded(options(tmp_path / "a", shard=Shard(1, 2)))
    two, _ = run_seeded(options(tmp_path / "b", shard=Shard(2, 2)))
    assert one.path.name == two.path.name == whole.path.name  # the shard is not part of the run id
    assert one_results.final is False and one_results.metrics["missing_samples"] == LIMIT // 2 * N
    target, merged, added = merge_runs([one.path, two.path], out=tmp_path / "merged")
    assert added == LIMIT * N and merged.final is True
    assert comparable(target) == comparable(whole)
    assert sorted_completions(target) == sorted_completions(whole)


def test_shards_into_one_folder_complete_the_run(tmp_path):
    whole, _ = run_seeded(options(tmp_path / "whole"))
    run_seeded(options(tmp_path / "shared", shard=Shard(2, 2)))
    folder, results = run_seeded(options(tmp_path / "shared", shard=Shard(1, 2)))
    assert sorted(p.name for p in folder.completion_files()) == [
        "completions.shard-1-of-2.jsonl",
        "completions.shard-2-of-2.jsonl",
    ]
    assert results.final is True
    assert comparable(folder) == comparable(whole)


def test_merge_refuses_different_runs(tmp_path):
    one, _ = run_seeded(options(tmp_path / "a", shard=Shard(1, 2)))
    other, _ = run_seeded(options(tmp_path / "b", shard=Shard(2, 2), seed=1))
    with pytest.raises(EvalkitError, match=r"seed: 0 -> 1"):
        merge_runs([one.path, other.path], out=tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_replay_reproduces_a_stored_runs_scores(tmp_path):
    original, original_results = run_seeded(options(tmp_path / "orig"))
    source = str(original.path / "completions.jsonl")
    opts = options(tmp_path / "replayed", from_file=source)
    [(replayed, results)] = run_with(opts, create_replay(BackendOptions(from_file=source)))
    assert comparable(replayed.folder) == comparable(original)
    assert results.provenance.model_info["path"] == str(Path(source).resolve())
    assert len(results.provenance.model_info["sha256"]) == 64


def test_replay_names_a_missing_sample(tmp_path):
    problems = get_task("arith-demo").load()[:2]
    source = tmp_path / "simple.jsonl"
    rows = [
        {"problem_id": p.id, "sample_index": i, "text": f"\\boxed{{{p.gold}}}"}
        for p in problems
        for i in range(2)
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows[:-1]))
    opts = options(tmp_path / "out", from_file=str(source), n=2, limit=2)
    missing = rf"lacks 1 of the 4 requested samples \(sample 1 of '{problems[1].id}'\).*"
    with pytest.raises(BackendError, match=missing + r"nothing was stored and no run folder was written"):
        run_with(opts, create_replay(BackendOptions(from_file=str(source))))
    assert not (tmp_path / "out").exists()  # the fixed file is another run: no half folder to mislead
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    [(_, results)] = run_with(
        replace(opts, from_file=str(source)), create_replay(BackendOptions(from_file=str(source)))
    )
    assert results.metrics["pass_at_1"] == 100.0 and results.final is True


def test_per_sample_prompts_get_one_request_per_sample(tmp_path):
    """A task whose view depends on the sample (like GPQA's option order) sends '<id>#<i>' requests, and each
    stored completion records its own view's gold and permutation."""

    def make_view(task, problem, index, seed):
        order = (index % 2, 1 - index % 2)
        return SampleView(problem.messages, gold=f"{problem.gold}:{index}", permutation=order)

    [task_plan] = plan(options(tmp_path, limit=2, n=3))
    task_plan.task = replace(task_plan.task, make_view=make_view)
    requests, routes = build_requests(task_plan, stored={(task_plan.problems[0].id, 1)})
    ids = [r.request_id for r in requests]
    assert ids == ["arith-000#0", "arith-000#2", "arith-001#0", "arith-001#1", "arith-001#2"]
    assert all(r.n == 1 for r in requests)
    assert requests[1].seeds == (derive_seed(0, "arith-demo", "arith-000", 2),)
    assert routes["arith-001#1"].views[1].gold == f"{task_plan.problems[1].gold}:1"

    record = completion_record(Completion("arith-001#1", 1, "t", 1, 2, "stop"), routes["arith-001#1"])
    assert (record.problem_id, record.gold, record.permutation) == (
        "arith-001",
        f"{task_plan.problems[1].gold}:1",
        (1, 0),
    )
    assert record.to_dict()["permutation"] == [1, 0]
    with pytest.raises(BackendError, match="did not ask for it"):
        completion_record(Completion("arith-001#1", 2, "t", 1, 2, "stop"), routes["arith-001#1"])


class FailingAfter(SeededAnswerBackend):
    """Yields `good` completions, then fails like a server that went away."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good

    def generate(self, requests):
        for count, completion in enumerate(super().generate(requests)):
            if count == self.good:
                raise BackendError("server went away")
            yield completion


def test_backend_failure_keeps_what_was_stored_and_resume_finishes(tmp_path):
    reference, _ = run_seeded(options(tmp_path / "ref"))
    stored = r"server went away \(7 new samples were stored in .* \(7/48 now\); re-running the same command "
    with pytest.raises(BackendError, match=stored + "keeps them and generates only the 41 missing"):
        run_with(options(tmp_path / "cut"), FailingAfter(7))
    folder = RunFolder(tmp_path / "cut" / reference.path.name)
    assert len(folder.completions()) == 7 and not folder.has_results()
    calls: list = []
    folder, results = run_seeded(options(tmp_path / "cut"), calls)
    assert sum(c.n for c in calls) == LIMIT * N - 7
    assert comparable(folder) == comparable(reference)


def test_a_limit_covering_every_problem_is_the_same_run(tmp_path):
    [whole] = plan(options(tmp_path, limit=None))
    [covering] = plan(options(tmp_path, limit=30))
    [partial] = plan(options(tmp_path, limit=29))
    assert whole.config == covering.config and covering.config.limit is None
    assert partial.config.limit == 29 and partial.config.run_id != whole.config.run_id
    assert len(partial.problems) == 29 and partial.config.data_fingerprint != whole.config.data_fingerprint
