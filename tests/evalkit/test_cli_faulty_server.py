"""`evalkit run --backend openai` (the installed command, a subprocess) against the fault-injecting
server: the full fault mix finishes in ONE invocation with every sample once and the retries in the
progress line; a sample that keeps failing exits 2 naming it, with every other answer stored and a true
statement of what a re-run does; the re-run asks only for that sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from evalkit.core.types import derive_seed
from evalkit.progress import RunProgress
from tests.model_backends.fault_server import FaultServer

REPO = Path(__file__).resolve().parents[2]
QUICK = {"backoff": 0.005, "max_backoff": 0.02, "timeout": 0.3}
EVERY = [(f"arith-{i:03d}", k) for i in range(30) for k in range(4)]


def evalkit_run(server: FaultServer, out: Path, **extra) -> subprocess.CompletedProcess:
    args = [
        "run",
        "--backend",
        "openai",
        "--base-url",
        server.url,
        "--model",
        "faulty",
        "--task",
        "arith-demo",
    ]
    args += ["--n", "4", "--max-new-tokens", "8", "--out", str(out), "--workers", "1"]
    for key, value in {**QUICK, **extra}.items():
        args += ["--backend-option", f"{key}={value}"]
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "evalkit", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def stored(out: Path) -> list[tuple[str, int]]:
    [folder] = list(out.iterdir())
    lines = (folder / "completions.jsonl").read_text().splitlines()
    return [(json.loads(x)["problem_id"], json.loads(x)["sample_index"]) for x in lines]


def test_the_full_fault_mix_finishes_in_one_invocation_with_retries_shown(tmp_path):
    with FaultServer(delay=0.6) as server:
        done = evalkit_run(server, tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(stored(tmp_path)) == EVERY  # every sample, none twice
    assert all(server.faults[f] > 0 for f in ("500", "429", "drop", "delay", "malformed", "truncated"))
    retries = sum(count for fault, count in server.faults.items() if fault != "ok")
    assert f"arith-demo: {retries} retries against a faulty server or connection" in done.stderr
    assert "openai: arith-" in done.stderr and "try 2 of 12" in done.stderr  # at least one retry line
    assert "Traceback" not in done.stderr and "Retryable" not in done.stderr


def test_a_sample_that_keeps_failing_exits_2_naming_it_and_the_rerun_asks_only_for_it(tmp_path):
    always = derive_seed(0, "arith-demo", "arith-007", 2)
    with FaultServer(mix={"500": 0.1, "truncated": 0.05}, always_fail={always}) as server:
        done = evalkit_run(server, tmp_path, max_tries=5)
    assert done.returncode == 2
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    [folder] = list(tmp_path.iterdir())
    assert line.startswith("error: 1 sample(s) failed at http://127.0.0.1:") and "arith-007 sample 2;" in line
    assert "after 5 tries: HTTP 500" in line and "the 119 other samples were returned" in line
    assert line.endswith(
        f"(119 new samples were stored in {folder} (119/120 now); re-running the same command keeps them "
        "and generates only the 1 missing)"
    )
    assert sorted(stored(tmp_path)) == sorted(set(EVERY) - {("arith-007", 2)})  # every answer that arrived
    assert "Traceback" not in done.stderr and not (folder / "results.json").exists()
    with FaultServer(mix={}) as healthy:
        again = evalkit_run(healthy, tmp_path)
    assert again.returncode == 0, again.stderr
    assert [body["seed"] for body in healthy.bodies] == [always]  # what the message promised
    assert sorted(stored(tmp_path)) == EVERY


def test_progress_counts_retries_from_other_threads_and_rate_limits_their_lines():
    from io import StringIO

    from rich.console import Console

    stream = StringIO()
    progress = RunProgress(Console(file=stream, width=200), plain=True, retry_interval=3600)
    progress.start_task("t", total=4, done=0)
    threads = [
        threading.Thread(target=lambda: [progress.retry(f"openai: retry {i}") for i in range(250)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.advance(10, False)
    progress.finish_task()
    text = stream.getvalue()
    assert progress.retries == 1000
    assert text.count("openai: retry") == 1  # the interval is an hour: one line shown, the rest counted
    assert "t: 1/4 samples" in text and text.rstrip().endswith(
        "t: 1000 retries against a faulty server or connection"
    )
    assert ", 1000 retries" in text.splitlines()[-2]  # in the progress line itself
