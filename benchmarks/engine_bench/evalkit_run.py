"""evalkit's engine in the benchmark: the cost of a real engine step at (batch, context) points, the
issue's workloads predicted from those costs, and scaled-down real runs that check the predictions."""

from __future__ import annotations

from collections.abc import Callable

import torch

from benchmarks.engine_bench import measure, roofline, workloads
from benchmarks.engine_bench.budget import Budget

# A check run is started only when 1.5x its predicted time (+ a few seconds of prefills and graph
# replays the cost model leaves out) fits in the time budget: the prediction is what it checks.
CHECK_SAFETY, CHECK_OVERHEAD_S = 1.5, 5.0
# Grid points stop this long before the budget ends, leaving time for the predictions (a few prefills)
# and the save; one point takes seconds (a 32K prefill and 18 steps of at most ~0.1 s at 256 x 32K).
GRID_RESERVE_S = 20.0


def engine_size(args, full: dict) -> tuple[int, int]:
    """Slots and max sequence length of the benchmark's engine: enough for the largest grid batch and the
    longest workload sample or grid context."""
    slots = max(args.slots, max(b for b, _ in args.points))
    longest = max(w.longest for w in full.values())
    return slots, max(longest, max(c for _, c in args.points) + args.grid_steps + 8)


def step_cost(grid: list[dict]) -> workloads.StepCost:
    return workloads.StepCost({(r["batch"], r["context"]): r["ms_per_step"] / 1000 for r in grid})


def run(
    model,
    args,
    full: dict,
    check: dict,
    bandwidth: float,
    budget: Budget,
    update: Callable[..., None],
) -> dict:
    """Measures in order of what the targets need: the grid (the target point first), the predictions of
    the `full` workloads at `args.slots` slots, then the `check` workloads' real runs as time allows.
    `update(out[, stage])` is called after each piece and before each stage, so the caller can save what
    exists and say where the run is."""
    slots, max_seq_len = engine_size(args, full)
    engine = measure.make_engine(model, slots, max_seq_len)
    weights = roofline.weight_bytes(model)
    itemsize = torch.empty((), dtype=model.dtype).element_size()
    out: dict = {
        "grid": [],
        "slots": slots,
        "max_seq_len": max_seq_len,
        "graph_mode": engine.runner.graph_mode,
    }

    def add_row(row: dict) -> None:
        moved = roofline.sambay_step_bytes(model.config, row["batch"], row["context"], weights, itemsize)
        row["bytes_per_step"] = moved["total"]
        row.update(roofline.achieved(moved["total"], row["ms_per_step"] / 1000, bandwidth))
        out["grid"].append(row)
        print(
            f"  {row['batch']}x{row['context']}: {row['ms_per_step']:.2f} ms/step, host {100 * row['host_overhead_share']:.1f}%,"
            f" {100 * row['fraction_of_copy_bandwidth']:.1f}% of copy bandwidth (first step {row['first_step_ms']:.0f} ms)",
            flush=True,
        )
        update(out)

    def allow(batch: int, context: int) -> bool:  # the first point (the targets') always runs
        return not out["grid"] or budget.allows(f"grid point {batch}x{context}", GRID_RESERVE_S)

    measure.step_costs(engine, args.points, args.grid_steps, on_row=add_row, allow=allow)
    out["slots"] = engine.runner.num_slots  # the pool exists now: what the engine really runs
    cost = step_cost(out["grid"])
    update(out, "evalkit workload predictions")
    out["prefill_seconds"] = {
        name: measure.prefill_seconds(engine, len(w.prompts[0])) for name, w in full.items()
    }
    out["predicted"] = {
        name: workloads.predict_continuous(w, args.slots, cost, out["prefill_seconds"][name])
        for name, w in full.items()
    }
    update(out)
    out["checks"] = {}
    for name, w in check.items():
        # predicted at the engine's own slot count: the check tests the cost model and the schedule
        prefill = measure.prefill_seconds(engine, len(w.prompts[0]))
        predicted = workloads.predict_continuous(w, out["slots"], cost, prefill)
        if not budget.allows(f"check run {name}", CHECK_SAFETY * predicted["seconds"] + CHECK_OVERHEAD_S):
            continue
        update(out, f"evalkit check run {name} (predicted {predicted['seconds']:.0f} s)")
        measured = measure.run_workload(engine, w)
        out["checks"][name] = {
            "workload": w.describe(),
            "slots": out["slots"],
            "measured": measured,
            "predicted": predicted,
            "predicted_over_measured": round(predicted["seconds"] / measured["seconds"], 3),
        }
        update(out)
    out["state_pool_mib"] = round(engine.runner.pool.nbytes() / 2**20, 1)
    return out
