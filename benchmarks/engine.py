"""Engine speed: evalkit's SambaY engine against the memory roofline and a same-size transformer.

    python benchmarks/engine.py                                  # CPU, the `small` random config
    python benchmarks/engine.py --device cuda --config published # the issue's benchmark (random bf16)
    python benchmarks/engine.py --model /path/to/checkpoint --device cuda

It measures, in one run (weights are random: speed does not depend on their values):
1. the cost of a real engine step on a grid of (batch, context): ms/step, device ms, host-overhead
   share, tokens/s, bytes moved (weights + caches, engine_bench/roofline.py) as GB/s and as a fraction
   of the measured device-to-device copy bandwidth;
2. the same for transformers' Phi3ForCausalLM with the Phi-4-mini configuration under `generate` with
   a static cache at the largest batch that fits (--no-baseline skips it);
3. the issue's workloads, (a) paper: one 2K prompt x 64 samples x 32K tokens and (b) eval: 30 x 150-token
   prompts x 64 samples of 2K-32K tokens: their time on both engines predicted from the step costs over
   each one's exact schedule (engine_bench/workloads.py), and a run of each workload scaled down by
   --check-scale on the real engine that checks the prediction (predicted / measured);
4. optionally (--scheduling) continuous batching against static batches of the same model.
Then the targets (10x the transformer on (a), 60% of the roofline at batch 64 / 8K context, host
overhead under 10%), whether each is met and by how much, and a JSON file with machine and versions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.engine_bench import baseline, measure, roofline, scheduling, workloads  # noqa: E402
from benchmarks.engine_bench.report import build_model, machine, peak_memory_mib, print_report  # noqa: E402

TARGETS = {"speedup_paper": 10.0, "roofline_fraction": 0.60, "host_overhead_share": 0.10}
# The sizes on a GPU; on a CPU the same shapes scaled down so that a run takes minutes.
GPU_DEFAULTS = dict(
    slots=64,
    paper=[2048, 64, 32768],
    eval=[30, 64, 150, 2048, 32768],
    grid_batches=[1, 16, 64],
    grid_contexts=[256, 2048, 8192, 16384, 32768],
    grid_steps=16,
    check_scale=16,
    check_problems=4,
    baseline_steps=8,
)
CPU_DEFAULTS = dict(
    slots=16,
    paper=[256, 16, 1024],
    eval=[8, 16, 64, 128, 1024],
    grid_batches=[1, 4, 16],
    grid_contexts=[128, 512, 1024],
    grid_steps=4,
    check_scale=4,
    check_problems=2,
    baseline_steps=4,
)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="checkpoint folder (default: random weights of --config)")
    p.add_argument("--config", default="small", choices=["tiny", "small", "published"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16"])
    p.add_argument("--slots", type=int, help="engine slots (concurrent samples)")
    p.add_argument("--paper", type=_ints, help="prompt,samples,gen_len")
    p.add_argument("--eval", type=_ints, help="problems,samples,prompt,min_len,max_len")
    p.add_argument("--grid-batches", type=_ints)
    p.add_argument("--grid-contexts", type=_ints)
    p.add_argument("--grid-steps", type=int)
    p.add_argument("--check-scale", type=int, help="divide lengths by this for the check runs")
    p.add_argument("--check-problems", type=int, help="eval problems in its check run")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--baseline-steps", type=int)
    p.add_argument("--baseline-contexts", type=int, default=3, help="contexts timed per workload")
    p.add_argument("--scheduling", action="store_true", help="also continuous vs static batching")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", help="JSON path (default: benchmarks/results/engine-<device>-<date>.json)")
    args = p.parse_args(argv)
    on_gpu = args.device.startswith("cuda")
    args.dtype = args.dtype or ("bfloat16" if on_gpu else "float32")
    for name, value in (GPU_DEFAULTS if on_gpu else CPU_DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if len(args.paper) != 3 or len(args.eval) != 5:
        p.error("--paper takes prompt,samples,gen_len and --eval problems,samples,prompt,min,max")
    return args


def make_workloads(args, vocab: int, scale: int = 1, problems: int | None = None) -> dict:
    prompt, samples, gen = args.paper
    n, s, eprompt, lo, hi = args.eval
    return {
        "paper": workloads.paper(vocab, prompt, samples, gen, args.seed, scale=scale),
        "eval": workloads.evaluation(vocab, problems or n, s, eprompt, lo, hi, args.seed, scale=scale),
    }


def ours(model, args, full: dict, bandwidth: float) -> dict:
    longest = max(w.longest for w in full.values())
    engine = measure.make_engine(
        model, args.slots, max(longest, max(args.grid_contexts) + args.grid_steps + 8)
    )
    grid = measure.step_costs(engine, sorted(args.grid_batches), sorted(args.grid_contexts), args.grid_steps)
    weights = roofline.weight_bytes(model)
    itemsize = torch.empty((), dtype=model.dtype).element_size()
    for row in grid:
        moved = roofline.sambay_step_bytes(model.config, row["batch"], row["context"], weights, itemsize)
        row["bytes_per_step"] = moved["total"]
        row.update(roofline.achieved(moved["total"], row["ms_per_step"] / 1000, bandwidth))
    cost = workloads.StepCost({(r["batch"], r["context"]): r["ms_per_step"] / 1000 for r in grid})
    out = {"grid": grid, "slots": engine.runner.num_slots, "graph_mode": engine.runner.graph_mode}
    out["prefill_seconds"] = {
        name: measure.prefill_seconds(engine, len(w.prompts[0])) for name, w in full.items()
    }
    out["predicted"] = {
        name: workloads.predict_continuous(w, args.slots, cost, out["prefill_seconds"][name])
        for name, w in full.items()
    }
    checks = {}
    for name, w in make_workloads(
        args, model.config.vocab_size, args.check_scale, args.check_problems
    ).items():
        measured = measure.run_workload(engine, w)
        predicted = workloads.predict_continuous(
            w, args.slots, cost, measure.prefill_seconds(engine, len(w.prompts[0]))
        )
        checks[name] = {
            "workload": w.describe(),
            "measured": measured,
            "predicted": predicted,
            "predicted_over_measured": round(predicted["seconds"] / measured["seconds"], 3),
        }
    out["checks"] = checks
    out["state_pool_mib"] = round(engine.runner.pool.nbytes() / 2**20, 1)
    return out


def transformer(args, dtype: torch.dtype, full: dict, bandwidth: float) -> dict:
    name = "published" if args.config == "published" or args.model else args.config
    model = baseline.build_phi3(name, dtype, args.device, args.seed)
    weights = roofline.weight_bytes(model)
    out = {"config": name, "parameters": sum(p.numel() for p in model.parameters()), "workloads": {}}
    for wname, w in full.items():
        cache = w.longest
        fit = baseline.largest_batch(model, cache, cap=w.num_samples, device=args.device)
        chunks = -(-w.num_samples // fit)
        batch = -(-w.num_samples // chunks)  # equal chunks: what a user with `fit` rows of memory runs
        prompt = len(w.prompts[0])
        top = cache - args.baseline_steps - 2
        contexts = sorted({prompt, *[c for c in args.grid_contexts if prompt < c <= top], top})
        if len(contexts) > args.baseline_contexts:  # keep the ends and evenly spaced points between
            idx = [
                round(i * (len(contexts) - 1) / (args.baseline_contexts - 1))
                for i in range(args.baseline_contexts)
            ]
            contexts = [contexts[i] for i in sorted(set(idx))]
        rows, prefill_per_row = [], None
        for ctx in contexts:
            timed = baseline.generate_timed(
                model, batch, ctx, cache, args.baseline_steps, args.device, args.seed
            )
            step = sorted(timed["step_seconds"])[len(timed["step_seconds"]) // 2]
            moved = roofline.phi3_step_bytes(model.config, batch, ctx, weights)
            rows.append(
                {"batch": batch, "context": ctx, "cache_tokens": cache, "ms_per_step": round(step * 1000, 3),
                 "tokens_per_second": round(batch / step, 1), "prefill_seconds": round(timed["prefill_seconds"], 3),
                 **roofline.achieved(moved["total"], step, bandwidth)}
            )  # fmt: skip
            if ctx == prompt:
                prefill_per_row = timed["prefill_seconds"] / batch
        cost = workloads.StepCost({(r["batch"], r["context"]): r["ms_per_step"] / 1000 for r in rows})
        out["workloads"][wname] = {
            "largest_batch_that_fits": fit,
            "batch": batch,
            "grid": rows,
            "predicted": workloads.predict_static(w, batch, cost, prefill_per_row),
        }
    del model
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def targets(result: dict) -> dict:
    grid = result["evalkit"]["grid"]
    at = min(grid, key=lambda r: (abs(r["batch"] - 64), abs(r["context"] - 8192)))
    out = {
        "roofline_fraction": {
            "at": [at["batch"], at["context"]],
            "measured": at["fraction_of_copy_bandwidth"],
        },
        "host_overhead_share": {"at": [at["batch"], at["context"]], "measured": at["host_overhead_share"]},
    }
    if "transformer" in result:
        ours = result["evalkit"]["predicted"]["paper"]["tokens_per_second"]
        theirs = result["transformer"]["workloads"]["paper"]["predicted"]["tokens_per_second"]
        out["speedup_paper"] = {"measured": round(ours / theirs, 2)}
        result["speedup_over_transformer"] = {
            name: round(w["tokens_per_second"] / result["transformer"]["workloads"][name]["predicted"]["tokens_per_second"], 2)
            for name, w in result["evalkit"]["predicted"].items()
        }  # fmt: skip
    for name, entry in out.items():
        goal = TARGETS[name]
        entry["target"] = goal
        lower_is_better = name == "host_overhead_share"
        entry["met"] = bool(entry["measured"] <= goal if lower_is_better else entry["measured"] >= goal)
        entry["gap"] = round(float(entry["measured"] - goal), 4)
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model(args)
    dtype = model.dtype
    bandwidth = roofline.copy_bandwidth(args.device)
    full = make_workloads(args, model.config.vocab_size)
    result = {
        "benchmark": "engine",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(args.device),
        "model": args.model or args.config,
        "model_config": model.config.to_dict(),
        "parameters": model.num_parameters(),
        "dtype": args.dtype,
        "device": args.device,
        "copy_bandwidth_gb_per_second": round(bandwidth / 1e9, 1),
        "workloads": {name: w.describe() for name, w in full.items()},
    }  # fmt: skip
    device_name = "cuda" if args.device.startswith("cuda") else "cpu"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
    out = (
        Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"engine-{device_name}-{stamp}.json"
    )
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; evalkit engine grid ...", flush=True)
    result["evalkit"] = ours(model, args, full, bandwidth)
    _save(out, result)  # after each part: a run cut short still leaves its figures
    if args.scheduling:
        print("continuous vs static batching ...", flush=True)
        w = make_workloads(args, model.config.vocab_size, args.check_scale, args.check_problems)["eval"]
        cont = scheduling.run_continuous(model, w, args.slots, args.device)
        static = scheduling.run_static(model, w, args.slots, args.device)
        result["scheduling"] = {"continuous": cont, "static": static,
                                "speedup": round(cont["tokens_per_second"] / static["tokens_per_second"], 3)}  # fmt: skip
        _save(out, result)
    if not args.no_baseline:
        del model
        print("transformer baseline (Phi3, generate, static cache) ...", flush=True)
        result["transformer"] = transformer(args, dtype, full, bandwidth)
    result["targets"] = targets(result)
    result["peak_memory_mib"] = round(peak_memory_mib(args.device), 1)
    _save(out, result)
    print_report(result)
    print(f"wrote {out}")
    return result


def _save(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    main()
