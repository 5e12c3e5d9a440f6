"""`evalkit run --data-parallel 2` as a user runs it: on the tiny SambaY checkpoint, the same samples as
one process in one folder; with the seeded test backend (quick, and slow enough per sample to be caught
in the middle), a killed worker restarted without losing or duplicating a sample, kill -9 of the parent
leaving no worker behind and the same command resuming every shard, and the limits of restarting."""

from __future__ import annotations

import os
import re
import signal
import subprocess

from tests.evalkit.parallel.helpers import (
    REPO,
    SEEDED_CLI,
    cli,
    is_gone,
    line_count,
    only_folder,
    records,
    run_args,
    seeded_args,
    stored_lines,
    wait_for,
)

SHARD_FILES = ["completions.shard-1-of-2.jsonl", "completions.shard-2-of-2.jsonl"]
DELAY = ("--backend-option", "delay=0.05")


def test_two_workers_reproduce_one_process_in_one_folder(tiny_checkpoint_dir, single_run, tmp_path):
    reference, expected, expected_results = single_run
    done = cli(*run_args(tiny_checkpoint_dir, tmp_path), "--data-parallel", "2")
    assert done.returncode == 0, done.stderr
    folder = only_folder(tmp_path)
    assert folder.path.name == reference.path.name  # the same run_id
    assert sorted(p.name for p in folder.completion_files()) == SHARD_FILES
    assert records(folder) == expected and len(expected) == 24
    results = folder.results()
    assert results.final is True and results.metrics == expected_results.metrics
    assert results.provenance.extra["data_parallel"] == {"workers": 2, "restarts": [0, 0]}
    assert results.provenance.extra["generated_this_session"] == 24
    assert results.provenance.model_info["backend"] == "sambay"  # from a worker: the parent loads no model
    assert re.search(r"shard 1/2: worker pid \d+ on \d+ CPU thread", done.stderr)


def _start(args: list[str], log) -> subprocess.Popen:
    return subprocess.Popen([*SEEDED_CLI, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)


def _worker_pids(log_path) -> dict[str, int]:
    """shard label -> the pid of its latest worker, from the parent's log ("shard 1/2: worker pid N")."""
    return {
        label: int(pid) for label, pid in re.findall(r"shard (\d/2): worker pid (\d+)", log_path.read_text())
    }


def _assert_exactly_the_reference(folder, reference) -> None:
    _, expected, expected_results = reference
    assert records(folder) == expected
    keys = stored_lines(folder)
    assert len(keys) == len(set(keys)) == 40  # every sample stored once, none lost with a killed worker
    results = folder.results()
    assert results.final is True and results.metrics == expected_results.metrics


def test_a_killed_worker_is_restarted_and_nothing_is_lost_or_duplicated(seeded_single_run, tmp_path):
    out, log_path = tmp_path / "out", tmp_path / "parent.log"
    with log_path.open("w") as log:
        parent = _start(seeded_args(out, "--data-parallel", "2", *DELAY), log)
        try:
            shard_file = lambda: next(out.glob(f"*/{SHARD_FILES[0]}"), out / "none")  # noqa: E731
            wait_for(lambda: line_count(shard_file()) >= 4, what="shard 1's first samples")
            victim = _worker_pids(log_path)["1/2"]
            os.kill(victim, signal.SIGKILL)
            assert line_count(shard_file()) < 20, "shard 1 finished before it was killed; raise the delay"
            assert parent.wait(timeout=120) == 0, log_path.read_text()
        finally:
            parent.kill()
    assert "shard 1/2: worker died (killed by SIGKILL); restarting" in log_path.read_text()
    assert _worker_pids(log_path)["1/2"] != victim  # a new worker finished the shard
    folder = only_folder(out)
    _assert_exactly_the_reference(folder, seeded_single_run)
    assert folder.results().provenance.extra["data_parallel"]["restarts"] == [1, 0]


def test_kill_9_of_the_parent_stops_every_worker_and_the_same_command_resumes(seeded_single_run, tmp_path):
    out, log_path = tmp_path / "out", tmp_path / "parent.log"
    args = seeded_args(out, "--data-parallel", "2")
    with log_path.open("w") as log:
        parent = _start([*args, *DELAY], log)
        try:
            shards = lambda: sum(line_count(p) for p in out.glob("*/completions.shard-*"))  # noqa: E731
            wait_for(lambda: shards() >= 8, what="samples")
            workers = _worker_pids(log_path)
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait()
        finally:
            parent.kill()
    assert len(workers) == 2
    wait_for(lambda: all(is_gone(pid) for pid in workers.values()), timeout=30, what="the workers to exit")
    folder = only_folder(out)
    before = len(folder.completions())
    assert 8 <= before < 40 and not folder.has_results()

    done = cli(*args, command=SEEDED_CLI)
    assert done.returncode == 0, done.stderr
    assert f"resuming: {before}/40 samples already stored" in done.stderr
    _assert_exactly_the_reference(folder, seeded_single_run)
    assert folder.results().provenance.extra["generated_this_session"] == 40 - before


def test_a_worker_that_keeps_dying_ends_the_run_with_one_line_naming_its_shard(tmp_path):
    done = cli(
        *seeded_args(tmp_path, "--data-parallel", "1", "--backend-option", "crash=start"), command=SEEDED_CLI
    )
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: shard 1/1's worker died 4 times (killed by SIGKILL)")
    assert "re-run the same command to resume" in error and "--shard 1/1" in error
    assert "Traceback" not in done.stderr
    assert done.stderr.count("restarting, stored samples kept") == 3  # bounded: 3 restarts, then stop


def test_a_worker_error_is_not_retried_and_stops_the_run_with_its_line(tmp_path):
    done = cli(
        *seeded_args(tmp_path, "--data-parallel", "2", "--backend-option", "refuse=no"), command=SEEDED_CLI
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: shard ")
    assert "seeded-test refuses: no" in done.stderr and "restarting" not in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())  # as in one process: an option the backend refuses leaves no folder
