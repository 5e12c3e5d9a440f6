"""The issue's acceptance check, as a user types it: two `evalkit run --backend replay` runs of arith-demo
(30 problems) with designed verdicts, then `evalkit compare --format json`: the exact paired delta, a CI
that contains it, and a p-value on the designed side of 0.05."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.evalkit.compare_helpers import write_replay

N = 4


def _evalkit(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "evalkit", *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _run(tmp_path: Path, name: str, rights: list[int]) -> Path:
    replay = write_replay(tmp_path / f"{name}.jsonl", rights, N)
    run_dir = tmp_path / "results" / name
    _evalkit("run", "--backend", "replay", "--from", str(replay), "--task", "arith-demo", "--n", str(N),
             "--run-dir", str(run_dir), "--workers", "1")  # fmt: skip
    return run_dir


@pytest.fixture(scope="module")
def run_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory.mktemp("b"), "b", [2] * 30)  # 2 of 4 right on every problem


@pytest.mark.parametrize(
    ("a_right", "delta", "p_value"),
    [
        # A gets 4 of 4 where B gets 2 of 4 on twelve problems, the same elsewhere: +50 x 12 / 30 = +20
        # points; only the two one-sided sign assignments of 2**12 reach it: p = 2 / 4096.
        ([4] * 12 + [2] * 18, 20.0, 2 / 4096),
        # A ahead by 2 samples on four problems, behind by 2 on one: +50 x 3 / 30 = +5 points;
        # |sum| >= 3 steps for 0, 1, 4 or 5 plus signs of 5: p = 12 / 32.
        ([4] * 4 + [0] + [2] * 25, 5.0, 12 / 32),
    ],
    ids=["A-better", "not-told-apart"],
)
def test_compare_two_replayed_runs(
    tmp_path: Path, run_b: Path, a_right: list[int], delta: float, p_value: float
) -> None:
    run_a = _run(tmp_path, "a", a_right)
    doc = json.loads(_evalkit("compare", str(run_a), str(run_b), "--format", "json", "--seed", "0"))
    assert doc["task"] == "arith-demo" and doc["num_problems"] == 30
    assert doc["delta"] == pytest.approx(delta, abs=1e-9)
    assert doc["ci95"][0] < doc["delta"] < doc["ci95"][1]
    assert doc["p_value"] == pytest.approx(p_value, abs=1e-12)
    assert doc["method"]["p_method"] == "exact"
    assert doc["significant"] is (p_value < 0.05)
    assert doc["warnings"] == []
    if p_value < 0.05:
        assert doc["ci95"][0] > 0 and doc["verdict"].startswith("A is better")
    else:
        assert doc["verdict"].startswith("No significant difference")
