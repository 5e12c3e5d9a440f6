"""Run folders for the compare / pool tests, built through the real CLI with the replay backend.

`replay_run(root, rights, n=4, seed=0)` writes a replay file for arith-demo in which problem i's first
`rights[i]` samples answer correctly (the rest answer gold + 1), runs `evalkit run --backend replay` on
it in this process, and returns the run folder. `cli(...)` runs any evalkit command in this process and
returns (exit code, stdout, stderr).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

from evalkit.cli import main
from tasks import get_task

ARITH = get_task("arith-demo").load(None)  # 30 problems, ids arith-000 .. arith-029


def write_replay(path: Path, rights: list[int], n: int) -> Path:
    with path.open("w") as f:
        for i, problem in enumerate(ARITH[: len(rights)]):
            for j in range(n):
                answer = problem.gold if j < rights[i] else str(int(problem.gold) + 1)
                text = f"Adding up. </think> The answer is \\boxed{{{answer}}}."
                record = {
                    "problem_id": problem.id,
                    "sample_index": j,
                    "text": text,
                    "num_generated_tokens": 9,
                }
                f.write(json.dumps(record) + "\n")
    return path


def cli(*args: str) -> tuple[int, str, str]:
    """`evalkit ARGS` in this process (no interpreter start-up): (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["evalkit", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def replay_run(
    root: Path,
    rights: list[int],
    *,
    n: int = 4,
    seed: int = 0,
    name: str = "model",
    extra: tuple[str, ...] = (),
) -> Path:
    """An arith-demo run folder whose problem i has rights[i] correct samples of n."""
    root.mkdir(parents=True, exist_ok=True)
    replay = write_replay(root / f"{name}.jsonl", rights, n)
    run_dir = root / f"{name}-seed{seed}-{'-'.join(extra) or 'run'}".replace("--", "")
    limit = ("--limit", str(len(rights))) if len(rights) < len(ARITH) else ()
    args = ("run", "--backend", "replay", "--from", str(replay), "--task", "arith-demo", "--n", str(n))
    args += ("--seed", str(seed), "--run-dir", str(run_dir), "--workers", "1", *limit, *extra)
    code, _, err = cli(*args)
    assert code == 0, err
    return run_dir
