"""Run folders written directly in the documented schema, for the leaderboard and report tests.

`write_run(root, model=..., task=..., correct=[[True, False, ...], ...])` writes config.json,
completions.jsonl, scores.jsonl and results.json for the given per-sample correctness (one list per
problem). METRICS comes from evalkit.metrics.compute_metrics, as the runner writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalkit.core.types import stable_hash
from evalkit.metrics import compute_metrics

BASE_CONFIG = {
    "model": "microsoft/Phi-4-mini-flash-reasoning",
    "model_revision": "abc123",
    "backend": "replay",
    "task": "aime24",
    "data_fingerprint": "fp-aime24",
    "prompt_name": "official",
    "prompt_hash": "p0",
    "n": 4,
    "temperature": 0.6,
    "top_p": 0.95,
    "max_new_tokens": 128,
    "seed": 0,
    "checker_version": "1",
    "limit": None,
}


def write_run(
    root: Path,
    *,
    correct: list[list[bool]],
    ci: tuple[float, float] | None = None,
    final: bool = True,
    schema_version: int = 1,
    scored: bool = True,
    texts: dict[tuple[int, int], str] | None = None,
    problem_metadata: dict[str, dict[str, Any]] | None = None,
    **config_changes: Any,
) -> Path:
    """A run folder under root/<run_id>; `correct[i][j]` is the verdict of problem i, sample j."""
    config = {**BASE_CONFIG, **config_changes}
    run_id = stable_hash(config)
    folder = root / run_id
    folder.mkdir(parents=True)
    header = {
        "schema_version": schema_version,
        "run_id": run_id,
        "config": config,
        "created": "2026-11-22T08:00:00+00:00",
    }
    (folder / "config.json").write_text(json.dumps(header))
    tokens = [[10 + 7 * i + 3 * j for j in range(len(row))] for i, row in enumerate(correct)]
    completions, scores = [], []
    for i, row in enumerate(correct):
        for j, ok in enumerate(row):
            answer = "7" if ok else "8"
            text = (texts or {}).get(
                (i, j), f"Problem {i}, sample {j}. </think> The answer is \\boxed{{{answer}}}."
            )
            base = {
                "problem_id": f"p{i:02d}",
                "sample_index": j,
                "gold": "7",
                "num_generated_tokens": tokens[i][j],
            }
            completions.append(
                {**base, "seed": j, "prompt_hash": "p0", "text": text, "num_prompt_tokens": 5,
                 "finish_reason": "stop", "seconds": 0.1, "permutation": None, "extra": {}}
            )  # fmt: skip
            scores.append(
                {
                    **base,
                    "correct": ok,
                    "extracted": answer,
                    "reason": "match" if ok else "mismatch",
                    "finish_reason": "stop",
                }
            )
    (folder / "completions.jsonl").write_text("".join(json.dumps(c) + "\n" for c in completions))
    if scored:
        (folder / "scores.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scores))
        metrics = compute_metrics(
            scores, task=config["task"], n=config["n"], problem_metadata=problem_metadata, n_bootstrap=200
        )
        if ci is not None:  # a chosen CI lets tests place the published value inside or outside it
            metrics["ci95"] = list(ci)
        results = {
            "schema_version": schema_version,
            "run_id": run_id,
            "config": config,
            "provenance": {"evalkit": "0.1.0", "backend": config["backend"]},
            "final": final and metrics["complete"],
            "metrics": metrics,
        }
        (folder / "results.json").write_text(json.dumps(results))
    return folder
