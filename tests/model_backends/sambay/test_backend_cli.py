"""`evalkit run --backend sambay` end to end on a tiny random SambaY checkpoint (and its resume)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from evalkit.cli import app
from model_backends.sambay.testing import make_tiny_checkpoint


def test_evalkit_run_of_the_demo_task_through_the_sambay_backend(tmp_path):
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny-sambay", seed=0)
    out = tmp_path / "results"
    args = ["run", "--backend", "sambay", "--model", str(checkpoint), "--task", "arith-demo", "--n", "2"]
    args += ["--limit", "3", "--max-new-tokens", "24", "--out", str(out), "--workers", "1"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    # The CLI says which ops run (the backend itself prints nothing).
    assert "sambay: reference PyTorch ops (device cpu; the Triton kernels need CUDA) on cpu, float32" in (
        first.stderr
    )
    (run_dir,) = [p for p in out.iterdir() if (p / "results.json").exists()]
    records = [json.loads(line) for line in (run_dir / "completions.jsonl").read_text().splitlines()]
    assert sorted((r["problem_id"], r["sample_index"]) for r in records) == [
        (f"arith-{i:03d}", k) for i in range(3) for k in range(2)
    ]
    for r in records:
        assert r["finish_reason"] in ("stop", "length") and 1 <= r["num_generated_tokens"] <= 24
        assert (r["finish_reason"] == "length") == (r["num_generated_tokens"] == 24)
        assert r["num_prompt_tokens"] > 0
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert (config["backend"], config["n"], config["limit"], config["max_new_tokens"]) == ("sambay", 2, 3, 24)
    results = json.loads((run_dir / "results.json").read_text())
    assert (results["metrics"]["num_problems"], results["metrics"]["complete"]) == (3, True)
    # The same command again resumes: nothing is regenerated.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len((run_dir / "completions.jsonl").read_text().splitlines()) == 6
