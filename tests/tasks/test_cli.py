"""`evalkit tasks` and `evalkit show-prompt` through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from evalkit.cli import app
from tasks import TASK_NAMES

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_tasks_lists_all_five_without_data(monkeypatch):
    monkeypatch.delenv("EVALKIT_DATA_DIR", raising=False)
    result = runner.invoke(app, ["tasks"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in TASK_NAMES:
        assert name in result.output
    assert "built in" in result.output  # arith-demo
    assert "Hub fallback" in result.output


def test_tasks_shows_counts_and_where_the_data_is(data_dir):
    result = runner.invoke(app, ["tasks", "--data-dir", str(data_dir)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 5}
    expected = {"aime24": 30, "aime25": 30, "aime26": 30, "hmmt_feb25": 30, "amc23": 40, "math500": 500}
    for name, count in {**expected, "gpqa_diamond": 198}.items():
        assert f"│ {count} " in rows[name]
        assert "yes: " in rows[name]


def test_show_prompt_arith_demo_prints_the_exact_message_and_gold():
    result = runner.invoke(app, ["show-prompt", "arith-demo", "--index", "3"])
    assert result.exit_code == 0, result.output
    assert (
        "Please reason step by step, and put your final answer within \\boxed{}. "
        "10 students share 70 pencils equally. How many pencils does each student get?\n"
    ) in result.output
    assert "# gold: 7" in result.output
    assert "permutation" not in result.output


def test_show_prompt_gpqa_prints_the_permutation(data_dir):
    result = runner.invoke(app, ["show-prompt", "gpqa_diamond", "--sample", "2", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "# permutation (letter -> option index, 0 = correct): [" in result.output
    assert any(f"# gold: {letter}" in result.output for letter in "ABCD")


def _evalkit(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "evalkit", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_unknown_task_is_one_line_and_exit_code_2():
    done = _evalkit("show-prompt", "aime2024")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert (
        "unknown task 'aime2024'" in lines[0]
        and "aime24, aime25, aime26, hmmt_feb25, amc23, math500, gpqa_diamond, arith-demo" in lines[0]
        and "suites: model-card, contests" in lines[0]
    )
    assert "Traceback" not in done.stderr


def test_index_out_of_range_is_a_user_error():
    result = runner.invoke(app, ["show-prompt", "arith-demo", "--index", "30"])
    assert result.exit_code != 0
    assert "out of range" in str(result.exception)
