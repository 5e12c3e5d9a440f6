"""Engine speed: evalkit's SambaY engine against the memory roofline and a same-size transformer.

    python benchmarks/engine.py                                  # CPU, the `small` random config
    python benchmarks/engine.py --device cuda --config published # the issue's benchmark (random bf16)
    python benchmarks/engine.py --model /path/to/checkpoint --device cuda
    python benchmarks/engine.py --device cuda --config published --part grid --time-budget 140 --dry-run

It measures, in one run (weights are random: speed does not depend on their values):
1. the cost of a real engine step at (batch, context) points: ms/step, device ms, host-overhead share,
   tokens/s, bytes moved (weights + caches, engine_bench/roofline.py) as GB/s and as a fraction of the
   measured device-to-device copy bandwidth (the GPU preset: the points the targets need, see POINTS);
2. the issue's workloads, (a) paper: one 2K prompt x 64 samples x 32K tokens and (b) eval: 30 x 150-token
   prompts x 64 samples of 2K-32K tokens: their time predicted from the step costs over each one's exact
   schedule (engine_bench/workloads.py), and a run of each workload scaled down by --check-scale on the
   real engine that checks the prediction (predicted / measured), as the time budget allows;
3. the same for transformers' Phi3ForCausalLM with the Phi-4-mini configuration under `generate` with
   a static cache at the largest batch that fits (--no-baseline skips it), eager steps, and on CUDA one
   point again with `generate`'s default compile (compiled / eager);
4. optionally (--scheduling) continuous batching against static batches of the same model.
Then the targets (engine_bench/targets.py) with met and gap, and a JSON file with machine and versions,
saved after every point so a run cut short keeps what it measured.

--part grid runs 1-2 (and 4), --part baseline runs 3 (with --evalkit-from a grid run's JSON for the
speedups): benchmarks/gpu_check.sh runs them as two parts, each under its own timeout and --time-budget.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import shlex
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.engine_bench import baseline, evalkit_run, phi3_run, roofline, scheduling, workloads  # noqa: E402
from benchmarks.engine_bench.budget import Budget  # noqa: E402
from benchmarks.engine_bench.report import build_model, machine, peak_memory_mib, print_report  # noqa: E402
from benchmarks.engine_bench.targets import targets  # noqa: E402

# The targets' points on a GPU, the decisive one first (roofline and host overhead at 64 x 8K), then the
# corners the workload predictions interpolate between: batch 1, 16, 256 at 2K and 32K, and batch 64
# (the paper workload decodes at 64 from 2K to 34K) at both ends as well.
POINTS = [
    (64, 8192),
    *itertools.product((1, 16, 64, 256), (2048,)),
    *itertools.product((1, 16, 64, 256), (32768,)),
]
# The sizes on a GPU; on a CPU the same shapes scaled down so that a run takes minutes.
GPU_DEFAULTS = dict(
    slots=64,
    paper=[2048, 64, 32768],
    eval=[30, 64, 150, 2048, 32768],
    points=POINTS,
    grid_steps=16,
    check_scale=16,
    check_problems=4,
    baseline_steps=8,
    baseline_prefill_chunk=4096,
    baseline_compile_check=True,
)
CPU_DEFAULTS = dict(
    slots=16,
    paper=[256, 16, 1024],
    eval=[8, 16, 64, 128, 1024],
    points=[(b, c) for c in (128, 512, 1024) for b in (1, 4, 16)],
    grid_steps=4,
    check_scale=4,
    check_problems=2,
    baseline_steps=4,
    baseline_prefill_chunk=None,
    baseline_compile_check=False,
)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _points(text: str) -> list[tuple[int, int]]:
    try:
        points = [tuple(int(v) for v in p.split("x")) for p in text.split(",") if p]
    except ValueError:
        points = []
    if not points or any(len(p) != 2 or min(p) < 1 for p in points):
        raise argparse.ArgumentTypeError(f"{text!r}: give BATCHxCONTEXT points, e.g. 64x8192,1x2048")
    return points  # type: ignore[return-value]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="checkpoint folder (default: random weights of --config)")
    p.add_argument("--config", default="small", choices=["tiny", "small", "published"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16"])
    p.add_argument("--part", default="all", choices=["all", "grid", "baseline"],
                   help="grid: evalkit's engine only; baseline: the Phi3 baseline only; all: both")  # fmt: skip
    p.add_argument("--slots", type=int, help="engine slots (concurrent samples) the workloads run at")
    p.add_argument("--paper", type=_ints, help="prompt,samples,gen_len")
    p.add_argument("--eval", type=_ints, help="problems,samples,prompt,min_len,max_len")
    p.add_argument("--points", type=_points, help="BATCHxCONTEXT,... step-cost points, in the order measured")
    p.add_argument("--grid-batches", type=_ints, help="with --grid-contexts: their product as the points")
    p.add_argument("--grid-contexts", type=_ints)
    p.add_argument("--grid-steps", type=int)
    p.add_argument("--check-scale", type=int, help="divide lengths by this for the check runs")
    p.add_argument("--check-problems", type=int, help="eval problems in its check run")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--baseline-steps", type=int)
    p.add_argument("--baseline-contexts", type=int, default=3, help="contexts timed per workload")
    p.add_argument("--baseline-prefill-chunk", type=int, help="generate's prefill_chunk_size (0: none)")
    p.add_argument("--baseline-compile-check", action=argparse.BooleanOptionalAction, default=None,
                   help="time one baseline point again with generate's default compile (CUDA)")  # fmt: skip
    p.add_argument("--evalkit-from", help="--part baseline: a grid run's JSON, for the speedups")
    p.add_argument("--time-budget", type=float, help="seconds; stages that would overrun are skipped")
    p.add_argument("--scheduling", action="store_true", help="also continuous vs static batching")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", help="JSON path (default: benchmarks/results/engine-<device>-<date>.json)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan, check the imports, measure nothing"
    )
    args = p.parse_args(argv)
    on_gpu = args.device.startswith("cuda")
    args.dtype = args.dtype or ("bfloat16" if on_gpu else "float32")
    if (args.grid_batches is None) != (args.grid_contexts is None) or (args.points and args.grid_batches):
        p.error("give --points, or --grid-batches with --grid-contexts (their product), not both")
    if args.grid_batches:
        args.points = [(b, c) for c in args.grid_contexts for b in args.grid_batches]
    for name, value in (GPU_DEFAULTS if on_gpu else CPU_DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.baseline_prefill_chunk = args.baseline_prefill_chunk or None
    args.grid_contexts = sorted({c for _, c in args.points})
    if len(args.paper) != 3 or len(args.eval) != 5:
        p.error("--paper takes prompt,samples,gen_len and --eval problems,samples,prompt,min,max")
    if args.evalkit_from and args.part != "baseline":
        p.error("--evalkit-from goes with --part baseline (the other parts measure evalkit themselves)")
    if args.evalkit_from and not args.dry_run and not Path(args.evalkit_from).is_file():
        p.error(f"--evalkit-from {args.evalkit_from}: no such file (a JSON written by --part grid)")
    if args.part == "baseline" and args.no_baseline:
        p.error("--part baseline with --no-baseline measures nothing")
    return args


def make_workloads(args, vocab: int, scale: int = 1, problems: int | None = None) -> dict:
    prompt, samples, gen = args.paper
    n, s, eprompt, lo, hi = args.eval
    return {
        "paper": workloads.paper(vocab, prompt, samples, gen, args.seed, scale=scale),
        "eval": workloads.evaluation(vocab, problems or n, s, eprompt, lo, hi, args.seed, scale=scale),
    }


def _baseline_name(args) -> str:
    return "published" if args.config == "published" or args.model else args.config


def evalkit_from(path: str, result: dict) -> dict:
    """evalkit's predictions from a grid run, if it measured the same workloads on the same model."""
    data = json.loads(Path(path).read_text())
    entry = {"path": path, "date": data.get("date"), "commit": data.get("machine", {}).get("evalkit_commit")}
    predicted = data.get("evalkit", {}).get("predicted")
    if data.get("workloads") != result["workloads"] or data.get("model") != result["model"]:
        entry["mismatch"] = "its model or workloads differ from this run's: no speedup computed"
    elif not predicted:
        entry["mismatch"] = "it has no workload predictions (cut short?): no speedup computed"
    else:
        entry["predicted"] = predicted
    return entry


def dry_run(args, out: Path) -> dict:
    """Print what the run would measure, and import (and construct the configs of) everything it uses,
    so that a missing package or a changed API shows here rather than on the GPU. Measures nothing."""
    vocab = baseline.CONFIGS[_baseline_name(args)]["vocab_size"]
    if args.part in ("all", "baseline") and not args.no_baseline:
        from transformers import Phi3ForCausalLM, StoppingCriteriaList  # noqa: F401

        missing = {"disable_compile", "prefill_chunk_size"} - baseline.generate_options()
        if missing:  # the run still works: it records this in transformer.generate_options_missing
            print(f"warning: this transformers' generate lacks {', '.join(sorted(missing))}")
        baseline.phi3_config(_baseline_name(args))  # transformers accepts the baseline's configuration
    full, check = (
        make_workloads(args, vocab),
        make_workloads(args, vocab, args.check_scale, args.check_problems),
    )
    plan: dict = {
        "part": args.part,
        "device": args.device,
        "model": args.model or args.config,
        "out": str(out),
    }
    if args.part in ("all", "grid"):
        plan["slots"], plan["max_seq_len"] = evalkit_run.engine_size(args, full)
        plan["points"] = [f"{b}x{c}" for b, c in args.points]
        plan["checks"] = {name: w.describe() for name, w in check.items()}
    if args.part in ("all", "baseline") and not args.no_baseline:
        plan["baseline_contexts"] = {
            name: phi3_run.contexts_for(len(w.prompts[0]), w.longest - args.baseline_steps - 2,
                                        args.grid_contexts, args.baseline_contexts)
            for name, w in full.items()
        }  # fmt: skip
        there = args.evalkit_from and Path(args.evalkit_from).is_file()
        plan["evalkit_from"] = (
            args.evalkit_from and f"{args.evalkit_from} ({'there' if there else 'not written yet'})"
        )
    plan["workloads"] = {name: w.describe() for name, w in full.items()}
    plan["time_budget"] = args.time_budget
    print(f"engine.py --part {args.part} --dry-run (nothing measured):")
    for key, value in plan.items():
        print(f"  {key}: {json.dumps(value, default=str)}")
    return plan


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    device_name = "cuda" if args.device.startswith("cuda") else "cpu"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
    out = (
        Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"engine-{device_name}-{stamp}.json"
    )
    if args.dry_run:
        return dry_run(args, out)
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = Budget(args.time_budget)
    result: dict = {
        "benchmark": "engine",
        "part": args.part,
        "complete": False,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(args.device),
        "model": args.model or args.config,
        "dtype": args.dtype,
        "device": args.device,
        "time_budget": args.time_budget,
    }  # fmt: skip

    def save(stage: str | None = None) -> None:
        if stage:
            result["stage"] = stage
            print(f"{stage} ...", flush=True)
        result["targets"] = targets(result)
        result["budget_skipped"] = budget.skipped
        _save(out, result)

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    vocab = baseline.CONFIGS[_baseline_name(args)]["vocab_size"]
    if args.part in ("all", "grid"):
        model = build_model(args)
        vocab, dtype = model.config.vocab_size, model.dtype
        result.update(model_config=model.config.to_dict(), parameters=model.num_parameters())
    full = make_workloads(args, vocab)
    result["workloads"] = {name: w.describe() for name, w in full.items()}
    bandwidth = roofline.copy_bandwidth(args.device)
    result["copy_bandwidth_gb_per_second"] = round(bandwidth / 1e9, 1)
    if args.part in ("all", "grid"):
        save(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; evalkit engine grid")
        check = make_workloads(args, vocab, args.check_scale, args.check_problems)
        evalkit_run.run(
            model,
            args,
            full,
            check,
            bandwidth,
            budget,
            update=lambda ev, stage=None: _put(result, "evalkit", ev, save, stage),
        )
        if args.scheduling:
            save("continuous vs static batching")
            w = check["eval"]
            cont = scheduling.run_continuous(model, w, args.slots, args.device)
            static = scheduling.run_static(model, w, args.slots, args.device)
            result["scheduling"] = {"continuous": cont, "static": static,
                                    "speedup": round(cont["tokens_per_second"] / static["tokens_per_second"], 3)}  # fmt: skip
        del model
    if args.part in ("all", "baseline") and not args.no_baseline:
        if args.evalkit_from:
            result["evalkit_from"] = evalkit_from(args.evalkit_from, result)
        save("transformer baseline (Phi3, generate, static cache)")
        phi3_run.run(
            args,
            dtype,
            full,
            bandwidth,
            budget,
            update=lambda t, stage=None: _put(result, "transformer", t, save, stage),
        )
    result["peak_memory_mib"] = round(peak_memory_mib(args.device), 1)
    result["complete"] = True
    save("done")
    print_report(result)
    print(f"wrote {out}")
    return result


def _put(result: dict, key: str, value: dict, save, stage: str | None = None) -> None:
    result[key] = value
    save(stage)


def _save(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    main()
