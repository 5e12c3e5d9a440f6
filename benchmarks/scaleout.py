"""One process vs `--data-parallel 2` on the demo run (tiny SambaY checkpoint, arith-demo, n = 4).

    python benchmarks/scaleout.py                 # 3 rounds, writes benchmarks/results/scaleout-cpu-<date>.json
    python benchmarks/scaleout.py --rounds 1 --limit 6

Each round runs `evalkit run` as a user types it three times: in one process with torch's default
threads (one per core), in one process with OMP_NUM_THREADS=1, and with `--data-parallel 2` (a fresh
results folder each time; the order rotates between rounds so a change in machine load hits all alike),
and checks that all three stored exactly the same samples. Wall time is the whole command
(start-up, model loading in every worker, generation, scoring); tokens/s is generated tokens / wall.
On the 2 shared cores of the development machine the point is the overhead of the split (a second
interpreter and model load, the parent's polling, one scoring pass), not a speed-up: both runs use the
same 2 cores (one process with torch's 2 threads vs two workers with 1 thread each). The 1-thread
single process is the baseline with the same per-process threading as a worker: against it the split
can win up to 2x from the second core, minus its overhead. The result JSON
records the machine, versions and `uptime` load averages before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="--data-parallel N")
    p.add_argument("--n", type=int, default=4, help="samples per problem (the demo's)")
    p.add_argument("--limit", type=int, help="first K problems (default: all 30, as the demo)")
    p.add_argument("--max-new-tokens", type=int, default=48, help="the demo's")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    return p.parse_args(argv)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# name -> (--data-parallel N or None, OMP_NUM_THREADS or None = torch's default: one per core)
VARIANTS = {"one_process": (None, None), "one_process_1_thread": (None, "1"), "data_parallel": ("N", None)}


def one_run(
    checkpoint: Path, out: Path, args: argparse.Namespace, workers: int | None, threads: str | None
) -> dict:
    command = [sys.executable, "-m", "evalkit", "run", "--backend", "sambay", "--model", str(checkpoint),
               "--task", "arith-demo", "--n", str(args.n), "--max-new-tokens", str(args.max_new_tokens),
               "--out", str(out), "--workers", "1"]  # fmt: skip
    if args.limit:
        command += ["--limit", str(args.limit)]
    if workers:
        command += ["--data-parallel", str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # threads as a user gets them
    if threads is not None:
        env["OMP_NUM_THREADS"] = threads
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    from evalkit.core.run_folder import RunFolder

    [folder] = [RunFolder(p) for p in out.iterdir() if p.is_dir()]
    results = folder.results()
    if not results.final:
        raise SystemExit(f"{folder.path} is not final")
    samples = sorted(
        (r.problem_id, r.sample_index, r.text, r.num_generated_tokens) for r in folder.completions()
    )
    tokens = sum(s[3] for s in samples)
    return {"wall_s": round(wall, 3), "tokens": tokens, "tokens_per_s": round(tokens / wall, 1),
            "run_id": folder.path.name, "samples": samples}  # fmt: skip


def machine() -> dict:
    import torch

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "evalkit": version("evalkit"),
        "evalkit_commit": commit.stdout.strip(),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from model_backends.sambay.testing import make_tiny_checkpoint

    load_before = load_average()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_tiny_checkpoint(Path(tmp) / "tiny", seed=0)
        names = list(VARIANTS)
        for r in range(args.rounds):
            runs = {}
            for name in names[r % 3 :] + names[: r % 3]:  # rotate the order: load changes hit all alike
                workers, threads = VARIANTS[name]
                workers = args.workers if workers == "N" else None
                runs[name] = one_run(checkpoint, Path(tmp) / f"r{r}-{name}", args, workers, threads)
            first = runs["one_process"]
            for name, run in runs.items():
                if run["samples"] != first["samples"] or run["run_id"] != first["run_id"]:
                    raise SystemExit(f"round {r + 1}: {name} stored other samples than one_process")
            split = runs["data_parallel"]
            record = {name: {k: v for k, v in run.items() if k != "samples"} for name, run in runs.items()}
            record["speedup_vs_one_process"] = round(first["wall_s"] / split["wall_s"], 3)
            record["speedup_vs_one_process_1_thread"] = round(
                runs["one_process_1_thread"]["wall_s"] / split["wall_s"], 3
            )
            record["identical_samples"] = True
            rounds.append(record)
            print(f"round {r + 1}: " + ", ".join(f"{name} {run['wall_s']:.2f} s ({run['tokens_per_s']:,.0f} tok/s)"
                  for name, run in runs.items()) + " | samples identical", flush=True)  # fmt: skip
    figures: dict = {"samples_per_run": len(first["samples"]), "rounds": rounds}
    for baseline in ("one_process", "one_process_1_thread"):
        ratios = [r[f"speedup_vs_{baseline}"] for r in rounds]
        figures[f"speedup_vs_{baseline}"] = {
            "min": min(ratios),
            "median": statistics.median(ratios),
            "max": max(ratios),
        }
        print(f"--data-parallel {args.workers} vs {baseline} (whole command, {len(first['samples'])} samples): "
              f"median {statistics.median(ratios):.2f}x, min {min(ratios):.2f}x, max {max(ratios):.2f}x")  # fmt: skip
    now = dt.datetime.now(dt.timezone.utc)
    record = {
        "benchmark": "scaleout",
        "date": now.isoformat(timespec="seconds"),
        "command": "python benchmarks/scaleout.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "load_average_1_5_15": {"before": load_before, "after": load_average()},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "figures": figures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"scaleout-cpu-{now:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
