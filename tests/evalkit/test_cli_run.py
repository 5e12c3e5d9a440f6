"""`evalkit run / score / merge` as a user types them (subprocesses): bad input writes nothing, kill -9 in
the middle then resume gives exactly the uninterrupted run, re-scoring rewrites the results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit.core.run_folder import RunFolder
from evalkit.scoring import CHECKER_VERSION

REPO = Path(__file__).resolve().parents[2]
FAKE = [sys.executable, "-m", "tests.evalkit.fake_backend"]  # the evalkit CLI + the seeded test backend
EVALKIT = [sys.executable, "-m", "evalkit"]
SEEDED = ["--backend", "seeded-test", "--model", "seeded-test", "--task", "arith-demo", "--workers", "1"]


def cli(command: list[str], *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*command, *args], cwd=REPO, capture_output=True, text=True, env=env, **kwargs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--task", "no-such-task", "--backend", "replay", "--from", "pyproject.toml"],
            "unknown task 'no-such-task'",
        ),
        (
            ["--task", "arith-demo", "--backend", "no-such-backend", "--model", "m"],
            "unknown backend 'no-such-backend'",
        ),
        (
            ["--task", "arith-demo", "--backend", "replay", "--from", "pyproject.toml", "--n", "0"],
            "--n must be at least 1",
        ),
        (["--task", "arith-demo", "--backend", "hf", "--model", "./no/such/checkpoint"], "no such folder"),
        (["--task", "arith-demo", "--backend", "sambay", "--model", "/no/such/dir"], "no such folder"),
        (["--task", "arith-demo", "--backend", "replay", "--from", "no-such.jsonl"], "no such file"),
        (["--task", "arith-demo", "--backend", "replay"], "needs --from FILE"),
        (
            ["--task", "arith-demo", "--backend", "replay", "--from", "pyproject.toml", "--shard", "3/2"],
            "--shard '3/2'",
        ),
        (
            ["--task", "arith-demo", "--backend", "replay", "--from", "pyproject.toml", "--shard", "x"],
            "--shard 'x'",
        ),
        (
            ["--task", "arith-demo", "--backend", "replay", "--from", "pyproject.toml", "--prompt", "nope"],
            "unknown prompt",
        ),
        (
            ["--task", "arith-demo", "--backend", "replay", "--from", "pyproject.toml", "--top-p", "0"],
            "--top-p",
        ),
        (
            [
                "--task",
                "arith-demo",
                "--backend",
                "replay",
                "--from",
                "pyproject.toml",
                "--temperature",
                "nan",
            ],
            "--temperature must be a finite number >= 0, got nan",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "results"
    done = cli(EVALKIT, "run", *args, "--out", str(out))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    killed_out, clean_out = tmp_path / "killed", tmp_path / "clean"
    args = [*SEEDED, "--n", "4", "--limit", "10", "--max-new-tokens", "64"]
    proc = subprocess.Popen(
        [*FAKE, "run", *args, "--out", str(killed_out), "--backend-option", "delay=0.05"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            files = list(killed_out.glob("*/completions.jsonl"))
            if files and files[0].read_text().count("\n") >= 8:
                break
            time.sleep(0.02)  # polling the file, not waiting for a fixed time
        assert proc.poll() is None, "the run finished before it could be killed; raise the delay"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    [folder_path] = list(killed_out.iterdir())
    interrupted = RunFolder(folder_path)
    stored_before = len(interrupted.completions())
    assert 8 <= stored_before < 40 and not interrupted.has_results()

    assert cli(FAKE, "run", *args, "--out", str(killed_out)).returncode == 0
    assert cli(FAKE, "run", *args, "--out", str(clean_out)).returncode == 0
    clean = RunFolder(clean_out / folder_path.name)
    lines = (folder_path / "completions.jsonl").read_text().splitlines()
    keys = [(json.loads(x)["problem_id"], json.loads(x)["sample_index"]) for x in lines]
    assert len(keys) == len(set(keys)) == 40  # exactly n x problems, no duplicates

    def key(r):
        return r.key

    assert sorted(interrupted.completions(), key=key) == sorted(clean.completions(), key=key)
    assert sorted(interrupted.scores(), key=key) == sorted(clean.scores(), key=key)
    assert interrupted.results().metrics == clean.results().metrics
    assert interrupted.results().final is True


def test_score_rewrites_results_and_merge_combines_shards(tmp_path):
    args = [*SEEDED, "--n", "2", "--limit", "6", "--max-new-tokens", "64", "--out", str(tmp_path / "r")]
    assert cli(FAKE, "run", *args, "--shard", "1/2").returncode == 0
    [folder_path] = list((tmp_path / "r").iterdir())
    folder = RunFolder(folder_path)
    assert folder.results().final is False
    done = cli(FAKE, "run", *args, "--shard", "2/2")
    assert done.returncode == 0 and "final" in done.stdout
    before = folder.results()
    folder.scores_path.unlink()
    done = cli(EVALKIT, "score", str(folder_path), "--workers", "1")
    assert done.returncode == 0, done.stderr
    after = folder.results()
    assert after.metrics == before.metrics and len(folder.scores()) == 12
    assert after.provenance.scoring.checker_version == folder.checker().checker_version == CHECKER_VERSION
    assert after.provenance.model_info == before.provenance.model_info  # re-scoring keeps provenance
    done = cli(EVALKIT, "merge", str(folder_path), "--out", str(tmp_path / "m"), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert RunFolder(tmp_path / "m" / folder_path.name).results().metrics == before.metrics


def test_score_a_bare_jsonl_with_task(tmp_path):
    source = tmp_path / "published.jsonl"
    rows = [{"problem_id": f"arith-{i:03d}", "sample_index": 0, "text": "\\boxed{1}"} for i in range(30)]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = cli(
        EVALKIT, "score", str(source), "--task", "arith-demo", "--out", str(tmp_path / "r"), "--workers", "1"
    )
    assert done.returncode == 0, done.stderr
    [folder_path] = list((tmp_path / "r").iterdir())
    results = RunFolder(folder_path).results()
    assert results.config.backend == "replay" and results.config.n == 1
    assert results.final is True and results.metrics["num_problems"] == 30
