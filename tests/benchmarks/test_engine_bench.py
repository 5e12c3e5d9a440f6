"""benchmarks/engine.py: its byte counts match sambay.md 5.3, its schedules match a step-by-step
simulation, its cost interpolation is exact on linear data, and a whole run on a tiny model writes the
JSON the issue asks for (on CPU; the figures themselves are only meaningful on a GPU)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.engine_bench import roofline, workloads
from model_backends.sambay.model.config import SambaYConfig


def test_sambay_bytes_per_step_match_the_spec():
    config = SambaYConfig.published()
    one = roofline.sambay_step_bytes(config, batch=1, context=1, weights=0)
    two = roofline.sambay_step_bytes(config, batch=1, context=2, weights=0)
    assert two["full_kv"] - one["full_kv"] == 8 * 5120  # layer 17 + 7 cross layers, 5 KiB per token each
    ring = roofline.sambay_step_bytes(config, batch=1, context=4096, weights=0)["swa_kv"]
    assert ring == 20_971_520  # 8 layers x 512 x 5,120 B once the ring is full
    assert ring == roofline.sambay_step_bytes(config, batch=1, context=512, weights=0)["swa_kv"]
    # Mamba: 9 layers, conv [5120, 4] in bf16 + SSM [5120, 16] in fp32, read and written
    assert one["mamba_state"] == 9 * 2 * 5120 * (4 * 2 + 16 * 4)
    b64 = roofline.sambay_step_bytes(config, batch=64, context=8192, weights=7)
    assert b64["total"] == 7 + 64 * b64["state_per_sequence"] + b64["logits"]


def test_phi3_bytes_per_step_match_the_spec():
    from benchmarks.engine_bench.baseline import phi3_config

    config = phi3_config("published")
    step = roofline.phi3_step_bytes(config, batch=1, context=1, weights=0)
    assert step["full_kv"] == 131_072  # 32 layers x 8 KV heads x 128 x (K, V) x 2 B = 128 KiB per token


def _brute_force(w: workloads.Workload, slots: int) -> tuple[list[int], list[int]]:
    """Step by step: start samples in order into free slots, each decodes `length` steps."""
    queue = [(len(p), n) for p, ls in zip(w.prompts, w.lengths, strict=True) for n in ls]
    running: list[list[int]] = []  # [context, steps left]
    counts, contexts = [], []
    while queue or running:
        while queue and len(running) < slots:
            prompt, n = queue.pop(0)
            running.append([prompt, n])
        counts.append(len(running))
        contexts.append(sum(r[0] for r in running))
        for r in running:
            r[0] += 1
            r[1] -= 1
        running = [r for r in running if r[1] > 0]
    return counts, contexts


@pytest.mark.parametrize("slots", [1, 3, 8, 50])
def test_continuous_schedule_equals_a_step_by_step_simulation(slots):
    w = workloads.evaluation(
        vocab=100, problems=5, samples=6, prompt_len=7, min_len=2, max_len=40, seed=slots
    )
    count, total = workloads.continuous_schedule(w, slots)
    want_count, want_total = _brute_force(w, slots)
    assert count.tolist() == want_count and total.tolist() == want_total


def test_static_schedule_runs_each_chunk_to_its_longest():
    w = workloads.Workload("x", [[1] * 5, [1] * 3], [[4, 9, 2], [7, 1]], [[0] * 3, [0] * 2])
    assert workloads.static_schedule(w, 2) == [(2, 5, 9), (2, 5, 7), (1, 3, 1)]


def test_step_cost_is_exact_on_linear_costs_and_clamps_outside():
    def truth(batch, context):
        return 0.002 + 1e-6 * batch * context + 1e-4 * batch

    points = {(b, c): truth(b, c) for b in (1, 16, 64) for c in (256, 2048, 8192)}
    cost = workloads.StepCost(points)
    for b in (1, 16, 64):
        for c in (256, 1000, 5000, 8192, 12000):  # 12000 extrapolates the last slope: still exact
            assert cost(b, c) == pytest.approx(truth(b, c))
    # between batches the cost is interpolated linearly: exact here only at grid contexts
    assert cost(40, 2048) == pytest.approx(np.interp(40, [16, 64], [truth(16, 2048), truth(64, 2048)]))
    assert cost(1, 10) == pytest.approx(truth(1, 256))  # below the grid: clamped


def test_predictions_count_every_token_once():
    w = workloads.paper(vocab=100, prompt_len=8, samples=6, gen_len=20)
    flat = workloads.StepCost({(1, 0): 0.01, (1, 100): 0.01, (64, 0): 0.01, (64, 100): 0.01})
    cont = workloads.predict_continuous(w, slots=6, cost=flat, prefill_seconds=0.5)
    assert cont["decode_steps"] == 20 and cont["seconds"] == pytest.approx(20 * 0.01 + 0.5)
    static = workloads.predict_static(w, batch=4, cost=flat, prefill_seconds_per_row=0.1)
    assert static["decode_steps"] == 40 and static["seconds"] == pytest.approx(40 * 0.01 + 6 * 0.1)
    assert cont["generated_tokens"] == static["generated_tokens"] == 120


@pytest.mark.slow
def test_a_tiny_run_writes_the_issue_figures(tmp_path):
    from benchmarks import engine

    out = tmp_path / "bench.json"
    args = (
        "--config tiny --slots 4 --paper 16,4,48 --eval 3,4,8,16,48 --grid-batches 1,4 --grid-contexts 16,64"
    )
    args += f" --grid-steps 3 --check-scale 4 --check-problems 2 --baseline-steps 3 --threads 1 --out {out}"
    engine.main(args.split())
    result = json.loads(out.read_text())
    assert {
        "machine",
        "copy_bandwidth_gb_per_second",
        "evalkit",
        "transformer",
        "targets",
        "peak_memory_mib",
    } <= set(result)
    assert result["machine"]["torch"] and result["date"]
    grid = result["evalkit"]["grid"]
    assert {(r["batch"], r["context"]) for r in grid} == {(1, 16), (4, 16), (1, 64), (4, 64)}
    for row in grid:
        assert row["ms_per_step"] > 0 and 0 <= row["host_overhead_share"] < 1
        assert 0 < row["fraction_of_copy_bandwidth"] < 1
    for name in ("paper", "eval"):
        check = result["evalkit"]["checks"][name]
        assert check["measured"]["generated_tokens"] == check["workload"]["generated_tokens"]
        # a ratio of two timings: reported by the benchmark, never judged by a test (it moves with load);
        # the schedule model itself is checked against a step-by-step simulation (test_continuous_schedule_equals_a_step_by_step_simulation)
        assert math.isfinite(check["predicted_over_measured"]) and check["predicted_over_measured"] > 0
        assert result["transformer"]["workloads"][name]["predicted"]["tokens_per_second"] > 0
    assert set(result["targets"]) == {"speedup_paper", "roofline_fraction", "host_overhead_share"}
    assert all(isinstance(t["met"], bool) for t in result["targets"].values())


# ---------------------------------------------------------------------------------------- parts and presets
def test_gpu_preset_measures_the_targets_point_first_and_the_corners_the_predictions_need():
    from benchmarks import engine
    from benchmarks.engine_bench.targets import TARGET_POINT

    args = engine.parse(["--device", "cuda", "--config", "published"])
    assert args.points[0] == TARGET_POINT
    needed = {(b, c) for b in (1, 16, 256) for c in (2048, 32768)} | {(64, 2048), (64, 32768)}
    assert needed <= set(args.points) and len(set(args.points)) == len(args.points)
    slots, max_seq_len = engine.evalkit_run.engine_size(args, engine.make_workloads(args, vocab=100))
    assert slots == 256 and max_seq_len == 2048 + 32768  # the paper workload's longest sample


@pytest.mark.parametrize(
    "argv, points",
    [
        (["--points", "4x64,1x16"], [(4, 64), (1, 16)]),
        (["--grid-batches", "1,4", "--grid-contexts", "16,64"], [(1, 16), (4, 16), (1, 64), (4, 64)]),
        ([], [(b, c) for c in (128, 512, 1024) for b in (1, 4, 16)]),  # the CPU preset
    ],
)
def test_points_come_from_points_or_the_grid_product(argv, points):
    from benchmarks import engine

    assert engine.parse(argv).points == points


@pytest.mark.parametrize(
    "argv",
    [
        ["--points", "64by8192"],
        ["--points", "0x16"],
        ["--grid-batches", "1,4"],
        ["--points", "1x16", "--grid-batches", "1", "--grid-contexts", "16"],
        ["--part", "grid", "--evalkit-from", "x.json"],
        ["--part", "baseline", "--evalkit-from", "/no/such.json"],
    ],
)
def test_bad_options_exit_2_with_a_message(argv, capsys):
    from benchmarks import engine

    with pytest.raises(SystemExit) as exc:
        engine.parse(argv)
    assert exc.value.code == 2 and "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "prompt, top, grid, count, want",
    [
        (2048, 34806, [2048, 8192, 32768], 3, [2048, 8192, 34806]),  # the middle goal 18K: 8K is nearer
        (150, 32901, [2048, 8192, 32768], 3, [150, 8192, 32901]),
        (2048, 34806, [2048, 8192, 32768], 4, [2048, 8192, 32768, 34806]),
        (16, 59, [16, 64], 3, [16, 59]),  # nothing between: the two ends
        (16, 59, [16, 32], 1, [16]),
    ],
)
def test_baseline_contexts_span_prompt_to_last_step(prompt, top, grid, count, want):
    from benchmarks.engine_bench.phi3_run import contexts_for

    assert contexts_for(prompt, top, grid, count) == want


def test_budget_allows_what_fits_and_records_what_it_skips():
    from benchmarks.engine_bench.budget import Budget

    now = [1000.0]
    budget = Budget(seconds=100.0, clock=lambda: now[0])
    assert budget.allows("small", 10.0) and budget.skipped == []
    now[0] += 5.0
    assert not budget.allows("large", 1000.0)
    assert budget.skipped == [{"stage": "large", "estimated_seconds": 1000.0, "seconds_left": 95.0}]
    assert budget.allows("medium", 95.0) and not budget.allows("just over", 95.1)
    assert Budget(None).allows("anything", 1e9)


PREDICTED = {"paper": {"tokens_per_second": 1000.0}, "eval": {"tokens_per_second": 500.0}}


@pytest.mark.parametrize(
    "compiled_over_eager, measured, baseline",
    [(None, 10.0, "eager"), (1.2, 10.0, "eager"), (0.8, 8.0, "compiled")],
    ids=["eager-only", "compiled-slower", "compiled-faster"],
)
def test_speedup_target_is_judged_against_the_faster_baseline(compiled_over_eager, measured, baseline):
    from benchmarks.engine_bench.targets import targets

    theirs = {n: {"predicted": {"tokens_per_second": 100.0}} for n in PREDICTED}
    result = {"evalkit_from": {"predicted": PREDICTED}, "transformer": {"workloads": theirs}}
    if compiled_over_eager is not None:
        result["transformer"]["compiled_check"] = {"compiled_over_eager": compiled_over_eager}
    t = targets(result)
    assert set(t) == {"speedup_paper"}  # no grid here: no roofline or host-overhead figure
    assert t["speedup_paper"]["measured"] == measured and baseline in t["speedup_paper"]["baseline"]
    assert t["speedup_paper"]["met"] == (measured >= 10) and t["speedup_paper"]["gap"] == measured - 10
    assert result["speedup_over_transformer"] == {"paper": 10.0, "eval": 5.0}


@pytest.mark.slow
def test_grid_and_baseline_parts_run_apart_and_join_through_the_grid_json(tmp_path):
    """--part grid under a budget too small for the check runs skips them (and says so); --part baseline
    then reads its predictions for the speedups, with generate's chunked prefill."""
    from benchmarks import engine

    args = "--config tiny --slots 4 --paper 16,4,48 --eval 3,4,8,16,48 --points 4x32,1x16,4x64"
    args += " --grid-steps 3 --check-scale 4 --check-problems 2 --baseline-steps 3 --threads 1"
    grid = engine.main(
        [*args.split(), "--part", "grid", "--time-budget", "0.01", "--out", str(tmp_path / "g.json")]
    )
    # the first point (the targets') always runs; the budget leaves out the rest and the check runs
    assert grid["complete"] and [(r["batch"], r["context"]) for r in grid["evalkit"]["grid"]] == [(4, 32)]
    assert [s["stage"] for s in grid["budget_skipped"]] == [
        "grid point 1x16",
        "grid point 4x64",
        "check run paper",
        "check run eval",
    ]
    assert grid["evalkit"]["checks"] == {} and set(grid["evalkit"]["predicted"]) == {"paper", "eval"}
    assert set(grid["targets"]) == {"roofline_fraction", "host_overhead_share"}
    assert grid["targets"]["roofline_fraction"]["at"] == [4, 32]  # the row nearest 64 x 8K
    base = engine.main(
        [*args.split(), "--part", "baseline", "--baseline-prefill-chunk", "8", "--evalkit-from", str(tmp_path / "g.json"),
         "--out", str(tmp_path / "b.json")]
    )  # fmt: skip
    assert "evalkit" not in base and base["evalkit_from"]["predicted"] == grid["evalkit"]["predicted"]
    for name in ("paper", "eval"):
        w = base["transformer"]["workloads"][name]
        assert w["predicted"]["tokens_per_second"] > 0 and w["out_of_memory"] == []
    assert base["transformer"]["prefill_chunk"] == 8 and not base["transformer"]["compiled"]
    assert base["transformer"]["generate_options_missing"] == []
    assert set(base["targets"]) == {"speedup_paper"} and base["speedup_over_transformer"]["paper"] > 0
    assert json.loads((tmp_path / "b.json").read_text())["complete"] is True
