"""`evalkit serve` under load: 20 concurrent vs 20 sequential requests through the HTTP API, tiny model.

    python benchmarks/serve.py                      # 5 rounds, writes benchmarks/results/serve-cpu-<date>.json
    python benchmarks/serve.py --rounds 3 --server-threads 2    # the variant that was sometimes < 1x

A real `evalkit serve` subprocess (as users run it) serves a tiny random SambaY checkpoint; this process
is the client. Each round sends the same 20 chat requests (distinct prompts, fixed seeds, `max_tokens`
each) once one after another and once all at the same time (20 threads), and reports
sequential seconds / concurrent seconds. Rounds alternate the two orders so a change in machine load
hits both sides alike; same seeds on CPU fp32 generate the same tokens either way (checked).
The result JSON records the machine, versions, `uptime` load averages before and after, every
round's times and the min / median ratio.

Why it was sometimes below 1x (0.47x-10x): torch's CPU intra-op pool (OpenMP) defaults to one thread
per core, and in the server it shares the 2 cores with the HTTP event loop, the generation loop and, on
this machine, other busy processes. An OpenMP barrier waits for its slowest thread, so each op waits a
scheduler slice whenever one pool thread is descheduled: with 2 threads at load ~9, 20 sequential
requests took 174-233 s and 20 concurrent ones 8-52 s (ratio 3.3x-23.7x in one run, wherever the
stalls happened to fall); with 1 thread, 9-14 s and 1.4-1.6 s (6.2x-9.8x), in the same hour
(benchmarks/results/serve-cpu-*-threads2.json / -threads1.json). `evalkit serve --threads` now
defaults to one fewer than the usable cores (at least 1). Two smaller effects: without --max-slots the
CPU pool has 16 slots, so 4 of 20 requests wait for a whole generation; and with no max_tokens, random
generation lengths make the ratio sum/max of the lengths rather than a measure of batching.
What is left is the engine: a batch-20 decode step costs ~1.6x a batch-1 step on the tiny model, and each
prompt is prefilled alone (~15 ms each), so the ratio grows with max_tokens (~6-8x at 48, more at 128).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

STARTUP_SECONDS = 300


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--max-tokens", type=int, default=128, help="per request (decode dominates real use)")
    p.add_argument("--max-slots", type=int, default=32, help="server --max-slots (>= --requests)")
    p.add_argument("--server-threads", type=int, help="server --threads (default: serve's own choice)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    return p.parse_args(argv)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def start_server(checkpoint: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "evalkit", "serve", "--model", str(checkpoint), "--port", "0"]
    command += ["--device", "cpu", "--dtype", "float32", "--max-slots", str(args.max_slots)]
    if args.server_threads is not None:
        command += ["--threads", str(args.server_threads)]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # serve decides, as for users
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=STARTUP_SECONDS)
    except queue.Empty:
        process.kill()
        raise SystemExit(f"evalkit serve did not start: {process.stderr.read()[-2000:]}") from None
    return process, first.rsplit(" at ", 1)[1].strip()


def bodies(args: argparse.Namespace, model: str) -> list[dict]:
    return [
        {
            "model": model,
            "messages": [{"role": "user", "content": f"What is {i} plus {2 * i + 1}? Think step by step."}],
            "max_tokens": args.max_tokens,
            "seed": 1000 + i,
        }
        for i in range(args.requests)
    ]


def ask(client: httpx.Client, url: str, body: dict) -> tuple[str, int]:
    response = client.post(url + "/chat/completions", json=body)
    response.raise_for_status()
    data = response.json()
    return data["choices"][0]["message"]["content"], data["usage"]["completion_tokens"]


def sequential(client: httpx.Client, url: str, work: list[dict]) -> tuple[float, list]:
    started = time.perf_counter()
    answers = [ask(client, url, body) for body in work]
    return time.perf_counter() - started, answers


def concurrent(client: httpx.Client, url: str, work: list[dict]) -> tuple[float, list]:
    barrier = threading.Barrier(len(work) + 1)

    def one(body: dict) -> tuple[str, int]:
        barrier.wait()
        return ask(client, url, body)

    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        futures = [pool.submit(one, body) for body in work]
        barrier.wait()  # every thread is ready: the clock starts with all 20 requests leaving together
        started = time.perf_counter()
        answers = [f.result() for f in futures]
    return time.perf_counter() - started, answers


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
        "starlette": version("starlette"),
        "uvicorn": version("uvicorn"),
        "httpx": version("httpx"),
        "evalkit_commit": commit.stdout.strip(),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from model_backends.sambay.testing import make_tiny_checkpoint

    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_tiny_checkpoint(Path(tmp) / "tiny", seed=0)
        process, url = start_server(checkpoint, args)
        try:
            limits = httpx.Limits(max_connections=args.requests, max_keepalive_connections=args.requests)
            with httpx.Client(timeout=600, limits=limits) as client:
                work = bodies(args, str(checkpoint))
                concurrent(client, url, work)  # warm-up: pool allocation, first-call costs, connections
                rounds, reference = [], None
                for r in range(args.rounds):
                    order = (sequential, concurrent) if r % 2 == 0 else (concurrent, sequential)
                    times = {}
                    for mode in order:
                        seconds, answers = mode(client, url, work)
                        reference = reference or answers
                        if answers != reference:
                            raise SystemExit(f"{mode.__name__} answers differ from the first run's")
                        times[mode.__name__] = seconds
                    ratio = times["sequential"] / times["concurrent"]
                    rounds.append({**{k: round(v, 4) for k, v in times.items()}, "ratio": round(ratio, 2)})
                    print(f"round {r + 1}: sequential {times['sequential']:.2f} s, concurrent "
                          f"{times['concurrent']:.2f} s, ratio {ratio:.2f}x", flush=True)  # fmt: skip
                health = client.get(url.removesuffix("/v1") + "/health").json()
        finally:
            process.terminate()
            process.wait(timeout=60)
    ratios = [r["ratio"] for r in rounds]
    tokens = sum(t for _, t in reference)
    figures = {"min_ratio": min(ratios), "median_ratio": statistics.median(ratios), "max_ratio": max(ratios),
               "tokens_per_workload": tokens, "rounds": rounds, "server_health_after": health}  # fmt: skip
    print(f"{args.requests} requests x {args.max_tokens} max tokens ({tokens} tokens): concurrent vs sequential "
          f"min {figures['min_ratio']:.2f}x, median {figures['median_ratio']:.2f}x (target >= 5x)")  # fmt: skip
    now = dt.datetime.now(dt.timezone.utc)
    record = {
        "benchmark": "serve",
        "date": now.isoformat(timespec="seconds"),
        "command": "python benchmarks/serve.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "load_average_1_5_15": {"before": load_before, "after": load_average()},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "figures": figures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    threads = "" if args.server_threads is None else f"-threads{args.server_threads}"
    path = args.out / f"serve-cpu-{now:%Y%m%d-%H%M%S}{threads}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
