"""Shared by the split-run tests: the one run they all reproduce, and how to compare two runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from evalkit.core.run_folder import RunFolder

REPO = Path(__file__).resolve().parents[3]
EVALKIT = [sys.executable, "-m", "evalkit"]


def run_args(checkpoint: Path, out: Path) -> list[str]:
    """6 arith-demo problems x 4 samples on the tiny SambaY checkpoint. --max-slots 4 runs one problem at
    a time (its 4 samples forked), so each shard file grows in steps a test can catch between."""
    return [
        "run", "--backend", "sambay", "--model", str(checkpoint), "--task", "arith-demo",
        "--n", "4", "--limit", "6", "--max-new-tokens", "96", "--max-slots", "4",
        "--workers", "1", "--out", str(out),
    ]  # fmt: skip


# The evalkit CLI with the seeded test backend registered (tests/evalkit/fake_backend.py): no model to
# load, a sample every `delay` seconds, so the kill tests are quick and can catch a run in the middle.
SEEDED_CLI = [sys.executable, "-m", "tests.evalkit.fake_backend"]


def seeded_args(out: Path, *extra: str) -> list[str]:
    """10 problems x 4 samples, 0.05 s each: a --data-parallel 2 worker takes about a second."""
    return [
        "run", "--backend", "seeded-test", "--model", "seeded-test", "--task", "arith-demo",
        "--n", "4", "--limit", "10", "--workers", "1", "--out", str(out), *extra,
    ]  # fmt: skip


def cli(*args: str, timeout: float = 240, command: list[str] = EVALKIT) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [*command, *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=timeout
    )


def only_folder(out: Path) -> RunFolder:
    [path] = [p for p in out.iterdir() if p.is_dir()]
    return RunFolder(path)


def records(folder: RunFolder) -> list[tuple[str, int, str, int]]:
    """What must be identical however a run is split: each sample's text and token count."""
    return sorted(
        (r.problem_id, r.sample_index, r.text, r.num_generated_tokens) for r in folder.completions()
    )


def stored_lines(folder: RunFolder) -> list[tuple[str, int]]:
    """Every complete line of every completions file: duplicates across files would show here."""
    import json

    keys = []
    for path in folder.completion_files():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            keys.append((row["problem_id"], row["sample_index"]))
    return keys


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_for(condition, timeout: float = 120, what: str = "condition") -> None:
    """Poll `condition` (a state, not a fixed sleep) until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def is_gone(pid: int) -> bool:
    """Exited (a zombie waiting for a reaper counts: it runs nothing and holds no GPU)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def main_in_process(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`evalkit ARGS` in this process, as `evalkit.cli.main` runs it: (exit code, stderr)."""
    from evalkit.cli import main

    monkeypatch.setattr(sys, "argv", ["evalkit", *args])
    monkeypatch.setenv("COLUMNS", "300")
    code = 0
    try:
        main()  # returns on success, exits with the code otherwise
    except SystemExit as exited:
        code = exited.code or 0
    return code, capsys.readouterr().err
