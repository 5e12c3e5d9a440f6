"""`evalkit run --ray` against a local Ray instance this module starts once (`ray.init(num_cpus=2)`,
~5 s): the same samples as one process in one folder, a task whose worker is killed retried by Ray with
nothing lost or duplicated, a shard error not retried, and a folder a task cannot see refused."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalkit.cli import app
from tests.evalkit.parallel.helpers import (
    REPO,
    SEEDED_CLI,
    line_count,
    only_folder,
    records,
    run_args,
    seeded_args,
    stored_lines,
    wait_for,
)

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'evalkit[ray]')")

SHARD_FILES = ["completions.shard-1-of-2.jsonl", "completions.shard-2-of-2.jsonl"]


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray instance for this module; `--ray local` in this process reuses it, another process
    joins it by its address."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def seeded_backend(monkeypatch):
    """The seeded test backend registered in this process (the Ray workers import it by name)."""
    from model_backends.registry import BACKENDS

    monkeypatch.setitem(BACKENDS, "seeded-test", "tests.evalkit.fake_backend")


def test_ray_local_reproduces_one_process_in_one_folder(
    ray_address, tiny_checkpoint_dir, single_run, tmp_path
):
    reference, expected, expected_results = single_run
    done = CliRunner().invoke(
        app, [*run_args(tiny_checkpoint_dir, tmp_path), "--ray", "local", "--ray-shards", "2"]
    )
    assert done.exit_code == 0, done.output
    folder = only_folder(tmp_path)
    assert folder.path.name == reference.path.name
    assert sorted(p.name for p in folder.completion_files()) == SHARD_FILES
    assert records(folder) == expected and len(expected) == 24
    results = folder.results()
    assert results.final is True and results.metrics == expected_results.metrics
    assert results.provenance.extra["ray"]["shards"] == 2
    assert not list(folder.path.glob(".visible-*"))  # the driver's marker is removed at the end


def _running_shard_pids() -> set[int]:
    """Ray names a worker process after the task it runs."""
    pids = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::run_shard"):
                pids.add(int(proc.name))
        except OSError:
            continue
    return pids


def test_a_killed_ray_worker_is_retried_and_nothing_is_lost_or_duplicated(
    ray_address, seeded_single_run, tmp_path
):
    out = tmp_path / "out"
    args = seeded_args(out, "--ray", ray_address, "--ray-shards", "2", "--backend-option", "delay=0.05")
    driver = subprocess.Popen(
        [*SEEDED_CLI, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        files = lambda: [next(out.glob(f"*/{name}"), out / "none") for name in SHARD_FILES]  # noqa: E731
        wait_for(lambda: all(line_count(f) >= 2 for f in files()), what="both shards generating")
        [victim, *_] = sorted(_running_shard_pids())
        os.kill(victim, signal.SIGKILL)
        assert all(line_count(f) < 20 for f in files()), "a shard finished before the kill; raise the delay"
        wait_for(lambda: _running_shard_pids() - {victim}, what="Ray's retry")
        _, stderr = driver.communicate(timeout=180)
        assert driver.returncode == 0, stderr.decode()
    finally:
        driver.kill()
    _, expected, expected_results = seeded_single_run
    folder = only_folder(out)
    assert records(folder) == expected
    keys = stored_lines(folder)
    assert len(keys) == len(set(keys)) == 40
    assert folder.results().final is True and folder.results().metrics == expected_results.metrics


def test_a_shard_error_is_not_retried(ray_address, seeded_backend, tmp_path):
    built = tmp_path / "built.log"
    options = ["--backend-option", "refuse=no", "--backend-option", f"built_log={built}"]
    done = CliRunner().invoke(
        app, seeded_args(tmp_path / "out", "--ray", "local", "--ray-shards", "1", *options)
    )
    assert done.exit_code != 0
    assert str(done.exception) == "shard 1/1: seeded-test refuses: no"
    assert line_count(built) == 1  # built once: Ray did not run the failing shard again
    assert not (tmp_path / "out").exists()  # the driver's marker was all its folder held: removed


def test_a_task_that_cannot_see_the_run_folder_says_where_to_put_it(
    ray_address, seeded_backend, tmp_path, monkeypatch
):
    from evalkit.core.run_folder import RunFolder

    # As if the driver's folder were on its local disk: the marker it writes never reaches the workers.
    monkeypatch.setattr(RunFolder, "write_marker", lambda self, token, text: None)
    done = CliRunner().invoke(app, seeded_args(tmp_path / "out", "--ray", "local", "--ray-shards", "2"))
    assert done.exit_code != 0
    message = str(done.exception)
    assert (
        message.startswith("shard ")
        and ": the worker on " in message
        and "cannot see the run folder" in message
    )
    assert str(tmp_path / "out") in message and "put --out on storage every node mounts" in message
    assert not list((tmp_path / "out").glob("*/completions*.jsonl"))  # nothing generated anywhere


def test_ray_shards_get_the_task_file(ray_address, seeded_backend, tmp_path):
    """A task file run as Ray tasks: each shard loads the TOML from its absolute path and stores exactly
    the samples of one process."""
    import json

    from tasks.arith_demo import generate

    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in generate()[:6]))
    (tmp_path / "arith.toml").write_text(
        'name = "arith-file"\ndata = "rows.jsonl"\nanswer_type = "integer"\nn = 4\n'
        '[fields]\nid = "id"\nproblem = "problem"\nanswer = "answer"\n'
    )
    common = ["run", "--backend", "seeded-test", "--model", "seeded-test", "--task", str(tmp_path / "arith.toml"),
              "--workers", "1"]  # fmt: skip
    one = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "one")])
    split = CliRunner().invoke(
        app, [*common, "--out", str(tmp_path / "two"), "--ray", "local", "--ray-shards", "2"]
    )
    assert one.exit_code == 0 and split.exit_code == 0, (one.output, split.output)
    single, sharded = only_folder(tmp_path / "one"), only_folder(tmp_path / "two")
    assert (
        single.path.name == sharded.path.name
        and sorted(p.name for p in sharded.completion_files()) == SHARD_FILES
    )
    assert records(sharded) == records(single) and len(records(single)) == 24
