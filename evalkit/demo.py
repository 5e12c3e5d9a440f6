"""The README's main job: a complete evalkit run on a machine with no model and no data.

`python -m evalkit.demo [--out demo]` does, showing each command as a user would type it:

1. writes a tiny random SambaY checkpoint in the published Hugging Face layout (config.json,
   model.safetensors with the real tensor names, a small BPE tokenizer with the Phi chat template);
2. `evalkit run` of the built-in `arith-demo` task through the built-in SambaY engine (one prefill per
   problem forked into n samples, continuous batching, seeded top-p sampling);
3. `evalkit leaderboard` and `evalkit report` on the result.

The weights are random, so Pass@1 is expected to be ~0: the demo shows the machinery, not a model.
Re-running it resumes the same run (nothing is regenerated).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from evalkit.core.run_folder import RunFolder


def _evalkit(*args: str) -> None:
    print(f"\n$ evalkit {' '.join(shlex.quote(a) for a in args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "evalkit", *args], check=False)
    if done.returncode != 0:
        sys.exit(done.returncode)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m evalkit.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo", help="folder for the checkpoint, results and report")
    parser.add_argument("--n", type=int, default=4, help="samples per problem")
    parser.add_argument("--max-new-tokens", type=int, default=48)
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
    _evalkit("leaderboard", str(results))
    # The newest run is the one just made or resumed (results.json is rewritten at the end of every run).
    runs = [RunFolder(p) for p in results.iterdir() if RunFolder(p).has_results()]
    newest = max(runs, key=lambda run: run.results_path.stat().st_mtime)
    _evalkit("report", str(newest.path), "--out", str(out / "report"))
    print(
        f"\nDone. Open {out / 'report' / 'report.html'} in a browser."
        " (Random weights: a Pass@1 near 0 is the expected result.)"
    )


if __name__ == "__main__":
    main()
