"""Task files through the real command line: a replay run gives the Pass@1 its replay file implies, a
mistake is one line and exit code 2, --data-parallel workers get the task file, and the other commands
(tasks --tasks-dir, show-prompt, score, leaderboard) take task files too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from evalkit.core.run_folder import RunFolder
from tasks.arith_demo import generate
from tests.tasks.example_task_file import EXAMPLE_TOML

REPO = Path(__file__).resolve().parents[2]
TOML = EXAMPLE_TOML


def evalkit(*args: str, command: tuple[str, ...] = ("-m", "evalkit"), cwd: Path = REPO):
    env = {**os.environ, "COLUMNS": "200", "HF_HUB_OFFLINE": "1"}
    env.pop("EVALKIT_TASKS_DIR", None)
    return subprocess.run(
        [sys.executable, *command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


def task_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "bench"
    folder.mkdir()
    rows = [
        {"qid": "p1", "question": "What is $\\frac{1}{2}+\\frac{1}{4}$?", "final": "\\frac{3}{4}"},
        {"qid": "p2", "question": "Solve $x^2=4$ for $x>0$.", "final": "2"},
    ]
    (folder / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "algebra.toml").write_text(TOML)
    return folder


def replay_file(path: Path) -> Path:
    """8 samples per problem; 3 of the 8 right on each: Pass@1 = 3/8 = 37.5%."""
    lines = []
    for index in range(8):
        right = index in (1, 4, 6)
        lines.append(
            {
                "problem_id": "p1",
                "sample_index": index,
                "text": "\\boxed{\\dfrac34}" if right else "\\boxed{1}",
            }
        )
        lines.append(
            {
                "problem_id": "p2",
                "sample_index": index,
                "text": "x = 2, so \\boxed{2}" if right else "\\boxed{-2}",
            }
        )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_task_file_runs_through_replay_with_the_pass_at_1_its_file_implies(tmp_path):
    folder = task_folder(tmp_path)
    replay = replay_file(tmp_path / "replay.jsonl")
    # a relative --task path, from the task folder (its data is found next to the TOML)
    done = evalkit("run", "--task", "algebra.toml", "--backend", "replay", "--from", str(replay),
                   "--out", str(tmp_path / "out"), "--workers", "1", cwd=folder)  # fmt: skip
    assert done.returncode == 0, done.stderr
    [run] = [RunFolder(p) for p in (tmp_path / "out").iterdir()]
    results = run.results()
    assert results.metrics["pass_at_1"] == 37.5 and results.final
    config = json.loads(run.config_path.read_text())
    assert config["config"]["task"] == "my-algebra" and len(config["config"]["task_definition"]) == 16
    assert config["checker"]["answer_type"] == "math"

    # the same file elsewhere is the same run (resumed, nothing generated); an edited TOML is another run
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("algebra.toml", "rows.jsonl"):
        (moved / name).write_bytes((folder / name).read_bytes())
    again = evalkit("run", "--task", str(moved / "algebra.toml"), "--backend", "replay", "--from", str(replay),
                    "--out", str(tmp_path / "out"), "--workers", "1")  # fmt: skip
    assert again.returncode == 0 and len(list((tmp_path / "out").iterdir())) == 1
    (moved / "algebra.toml").write_text(TOML + "# edited\n")
    edited = evalkit("run", "--task", str(moved / "algebra.toml"), "--backend", "replay", "--from", str(replay),
                     "--out", str(tmp_path / "out"), "--workers", "1")  # fmt: skip
    assert edited.returncode == 0 and len(list((tmp_path / "out").iterdir())) == 2

    # leaderboard and score take the run like any other (a task file has no published numbers)
    board = evalkit("leaderboard", str(tmp_path / "out"), "--reference", "phi4_mini_flash_model_card")
    assert board.returncode == 0 and "my-algebra" in board.stdout and "37.5" in board.stdout, board.stderr
    rescored = evalkit("score", str(run.path), "--workers", "1")
    assert rescored.returncode == 0 and run.results().metrics["pass_at_1"] == 37.5
    bare = evalkit("score", str(replay), "--task", str(folder / "algebra.toml"), "--out", str(tmp_path / "bare"),
                   "--workers", "1")  # fmt: skip
    assert bare.returncode == 0 and "37.50" in bare.stdout, bare.stderr


def test_a_task_file_naming_a_missing_data_file_exits_2_with_one_line(tmp_path):
    folder = task_folder(tmp_path)
    (folder / "algebra.toml").write_text(TOML.replace("rows.jsonl", "gone.jsonl"))
    done = evalkit("run", "--task", str(folder / "algebra.toml"), "--backend", "replay",
                   "--from", str(replay_file(tmp_path / "r.jsonl")), "--out", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line == (
        f"error: {folder / 'algebra.toml'}: key 'data' names {folder / 'gone.jsonl'}, which does not exist; "
        "fix the path (relative paths are relative to the task file's folder)"
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_data_parallel_workers_get_the_task_file(tmp_path):
    """10 arith-demo problems as a task file, on the seeded test backend: two worker processes store
    exactly the samples of one process."""
    folder = tmp_path / "arith"
    folder.mkdir()
    rows = generate()[:10]
    (folder / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "arith.toml").write_text(
        'name = "arith-file"\ndata = "rows.jsonl"\nanswer_type = "integer"\nn = 4\n'
        '[fields]\nid = "id"\nproblem = "problem"\nanswer = "answer"\n'
    )
    seeded = ("-m", "tests.evalkit.fake_backend")
    common = ["run", "--backend", "seeded-test", "--model", "seeded-test", "--task", str(folder / "arith.toml"),
              "--workers", "1"]  # fmt: skip
    single = evalkit(*common, "--out", str(tmp_path / "one"), command=seeded)
    split = evalkit(*common, "--out", str(tmp_path / "two"), "--data-parallel", "2", command=seeded)
    assert single.returncode == 0, single.stderr
    assert split.returncode == 0, split.stderr
    [one] = [RunFolder(p) for p in (tmp_path / "one").iterdir()]
    [two] = [RunFolder(p) for p in (tmp_path / "two").iterdir()]
    assert one.path.name == two.path.name  # the same run_id
    key = sorted((r.problem_id, r.sample_index, r.text) for r in one.completions())
    assert len(key) == 40 and key == sorted((r.problem_id, r.sample_index, r.text) for r in two.completions())
    assert one.results().metrics["pass_at_1"] == two.results().metrics["pass_at_1"]


def test_tasks_lists_suites_and_the_task_files_of_a_folder_broken_ones_with_their_problem(tmp_path):
    folder = task_folder(tmp_path)
    (folder / "broken.toml").write_text(TOML.replace('answer_type = "math"', 'answer_type = "maths"'))
    done = evalkit("tasks", "--tasks-dir", str(folder))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "contests" in out and "aime24, aime25, aime26, hmmt_feb25, amc23" in out and "model-card" in out
    row = next(line for line in out.splitlines() if "my-algebra" in line)
    assert "│ 2 " in row and "math" in row
    assert "BROKEN" in out and "'maths' is unknown" in out.replace("\n", "")

    # --task NAME finds a task file of the folder by its name (or its file's stem)
    shown = evalkit("show-prompt", "my-algebra", "--tasks-dir", str(folder), "--index", "1")
    assert shown.returncode == 0, shown.stderr
    assert "# gold: 2" in shown.stdout and "Solve $x^2=4$ for $x>0$." in shown.stdout
    by_stem = evalkit("show-prompt", "algebra", "--tasks-dir", str(folder))
    assert by_stem.returncode == 0 and "# task my-algebra | problem p1" in by_stem.stdout


def test_an_unknown_task_lists_tasks_suites_and_task_files_in_one_line():
    done = evalkit("show-prompt", "no-such-task")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "unknown task 'no-such-task'" in line and "suites: model-card, contests" in line
    assert "--task path/to/task.toml" in line
