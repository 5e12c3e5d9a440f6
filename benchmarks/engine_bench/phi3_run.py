"""The same-size transformer in the benchmark: Phi3ForCausalLM under `generate` with a static cache, timed
at a few contexts of each workload at the largest batch that fits, and each workload predicted from those
step costs over `generate`'s static batches (engine_bench/baseline.py has the model and the timing)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from benchmarks.engine_bench import baseline, roofline, workloads
from benchmarks.engine_bench.budget import Budget

# A compile of the decode step takes a minute or more (torch.compile + CUDA graphs, per shape).
COMPILE_ESTIMATE_S = 60.0
OOM_RETRIES = 2  # halve the batch at most this often when a point runs out of memory


def contexts_for(prompt: int, top: int, grid_contexts: list[int], count: int) -> list[int]:
    """The contexts timed for one workload, cheapest prefill first: its prompt, its last step (`top`) and,
    between them, the grid contexts nearest to evenly spaced goals: `count` in all (fewer if fewer exist)."""
    if count <= 1 or top <= prompt:
        return [prompt]
    chosen = {prompt, top}
    between = sorted({c for c in grid_contexts if prompt < c < top})
    for i in range(1, count - 1):
        if not between:
            break
        goal = prompt + (top - prompt) * i / (count - 1)
        best = min(between, key=lambda c: abs(c - goal))
        between.remove(best)
        chosen.add(best)
    return sorted(chosen)


def _equal_chunks(samples: int, fit: int) -> int:
    chunks = -(-samples // fit)
    return -(-samples // chunks)  # equal chunks: what a user with `fit` rows of memory runs


def _estimate(rows: list[dict], ctx: int, steps: int) -> float:
    """Seconds for one more point at context `ctx`, from the last one measured: prefill grows between
    linearly and quadratically with the context (1.5 power), the steps cost what they cost there."""
    last = rows[-1]
    prefill = last["prefill_seconds"] * (ctx / last["context"]) ** 1.5
    return 1.5 * (prefill + (steps + 2) * last["ms_per_step"] / 1000) + 2.0


def _workload(
    model, args, name: str, w, weights: int, bandwidth: float, budget: Budget, entry: dict, update
) -> None:
    """Fills `entry` (already in the saved result, so a run cut short keeps every point measured) with
    the timed points and the prediction from them, re-made after each point."""
    cache = w.longest
    prompt = len(w.prompts[0])
    contexts = contexts_for(
        prompt, cache - args.baseline_steps - 2, args.grid_contexts, args.baseline_contexts
    )
    fit = baseline.largest_batch(model, cache, w.num_samples, args.device, args.baseline_prefill_chunk)
    entry.update(largest_batch_that_fits=fit, contexts=contexts, grid=[], out_of_memory=[])
    for _attempt in range(OOM_RETRIES + 1):
        entry["batch"], entry["grid"] = _equal_chunks(w.num_samples, fit), []
        entry.pop("predicted", None)
        try:
            for ctx in contexts:
                if entry["grid"] and not budget.allows(
                    f"baseline {name} context {ctx}", _estimate(entry["grid"], ctx, args.baseline_steps)
                ):
                    continue
                update(f"baseline {name}: batch {entry['batch']}, context {ctx}")
                row = _point(model, args, entry["batch"], ctx, cache, weights, bandwidth)
                entry["grid"].append(row)
                print(
                    f"  {row['ms_per_step']:.2f} ms/step, prefill {row['prefill_seconds']:.1f} s", flush=True
                )
                _predict(w, entry, prompt)
                update()
            return
        except torch.cuda.OutOfMemoryError as exc:  # a user would lower the batch: so do we
            entry["out_of_memory"].append({"batch": entry["batch"], "error": str(exc).splitlines()[0][:200]})
            torch.cuda.empty_cache()
            fit = max(1, fit // 2)


def _predict(w, entry: dict, prompt: int) -> None:
    rows = entry["grid"]
    if rows and rows[0]["context"] == prompt:  # the prompt's point gives the prefill cost per row
        cost = workloads.StepCost({(r["batch"], r["context"]): r["ms_per_step"] / 1000 for r in rows})
        prefill_per_row = rows[0]["prefill_seconds"] / entry["batch"]
        entry["predicted"] = workloads.predict_static(w, entry["batch"], cost, prefill_per_row)


def _point(model, args, batch: int, ctx: int, cache: int, weights: int, bandwidth: float) -> dict:
    timed = baseline.generate_timed(
        model, batch, ctx, cache, args.baseline_steps, args.device, args.seed,
        prefill_chunk=args.baseline_prefill_chunk,
    )  # fmt: skip
    step = sorted(timed["step_seconds"])[len(timed["step_seconds"]) // 2]
    moved = roofline.phi3_step_bytes(model.config, batch, ctx, weights)
    return {
        "batch": batch,
        "context": ctx,
        "cache_tokens": cache,
        "ms_per_step": round(step * 1000, 3),
        "tokens_per_second": round(batch / step, 1),
        "prefill_seconds": round(timed["prefill_seconds"], 3),
        **roofline.achieved(moved["total"], step, bandwidth),
    }


def _compiled_check(model, args, w, entry: dict, budget: Budget) -> dict:
    """One point of the paper workload again with `generate`'s default compile: how much faster its
    compiled step is than the eager one the predictions use (compiled / eager ms per step)."""
    eager = entry["grid"][0]
    if not args.device.startswith("cuda"):
        return {"skipped": "generate compiles only on CUDA"}
    if not budget.allows("compiled baseline point", COMPILE_ESTIMATE_S):
        return {"skipped": f"under {COMPILE_ESTIMATE_S:.0f} s of the time budget left"}
    steps = max(12, args.baseline_steps)  # the first steps compile and record graphs: the median is past them
    timed = baseline.generate_timed(
        model, eager["batch"], eager["context"], eager["cache_tokens"], steps, args.device, args.seed,
        compile=True, prefill_chunk=args.baseline_prefill_chunk,
    )  # fmt: skip
    step = sorted(timed["step_seconds"])[len(timed["step_seconds"]) // 2]
    return {
        "batch": eager["batch"],
        "context": eager["context"],
        "seconds_with_compile": round(timed["seconds"], 1),
        "eager_ms_per_step": eager["ms_per_step"],
        "compiled_ms_per_step": round(step * 1000, 3),
        "compiled_over_eager": round(step * 1000 / eager["ms_per_step"], 3),
    }


def run(
    args, dtype: torch.dtype, full: dict, bandwidth: float, budget: Budget, update: Callable[..., None]
) -> dict:
    name = "published" if args.config == "published" or args.model else args.config
    model = baseline.build_phi3(name, dtype, args.device, args.seed)
    weights = roofline.weight_bytes(model)
    have = baseline.generate_options()
    out: dict = {
        "config": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        # eager steps (compiled_check times one point compiled), unless generate's compile cannot be off
        "compiled": "disable_compile" not in have and args.device.startswith("cuda"),
        "prefill_chunk": args.baseline_prefill_chunk if "prefill_chunk_size" in have else None,
        "generate_options_missing": sorted({"disable_compile", "prefill_chunk_size"} - have),
        "workloads": {},
    }
    for wname, w in full.items():  # the paper workload first: the speedup target is on it
        entry = out["workloads"].setdefault(wname, {})
        _workload(
            model, args, wname, w, weights, bandwidth, budget, entry, lambda stage=None: update(out, stage)
        )
        update(out)
    paper = out["workloads"].get("paper", {})
    if args.baseline_compile_check and paper.get("grid"):
        out["compiled_check"] = {"running": True}
        update(out, "baseline paper point again with generate's compile")
        try:
            out["compiled_check"] = _compiled_check(model, args, full["paper"], paper, budget)
        except Exception as exc:  # noqa: BLE001 - optional figure: the eager ones are saved, keep them
            out["compiled_check"] = {
                "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            }
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
        update(out)
    del model
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out
