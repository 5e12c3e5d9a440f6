"""Measurements on evalkit's engine: the cost of real `engine.step()` calls at (batch, context) points,
split into device time and host overhead, and end-to-end runs of a workload.

Device time per step is what the GPU spends in the step's decode and sampling (CUDA events around
`runner.decode` and `runner.sample`; on CPU, which runs them synchronously, their wall time). The rest of
the step's wall time is host overhead: scheduling, bookkeeping, launches, the one host sync.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from benchmarks.engine_bench import sync
from model_backends.sambay.engine import EngineConfig, LLMEngine, Request, SamplingParams

SAMPLING = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=32768)


class DeviceClock:
    """Wraps a runner's decode and sample to time them on the device without syncing inside the step."""

    def __init__(self, runner) -> None:
        self.runner, self.cuda = runner, runner.device.type == "cuda"
        self.pairs: list[tuple] = []
        self._decode, self._sample = runner.decode, runner.sample
        runner.decode, runner.sample = self._wrap(self._decode), self._wrap(self._sample)

    def _wrap(self, fn):
        def timed(*args, **kwargs):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                out = fn(*args, **kwargs)
                end.record()
                self.pairs.append((start, end))
            else:
                start = time.perf_counter()
                out = fn(*args, **kwargs)
                self.pairs.append((start, time.perf_counter()))
            return out

        return timed

    def take(self) -> float:
        """Seconds recorded since the last take (syncs on CUDA to read the events)."""
        if self.cuda:
            torch.cuda.synchronize()
            seconds = sum(s.elapsed_time(e) for s, e in self.pairs) / 1000
        else:
            seconds = sum(e - s for s, e in self.pairs)
        self.pairs.clear()
        return seconds

    def remove(self) -> None:
        self.runner.decode, self.runner.sample = self._decode, self._sample


def make_engine(model, slots: int, max_seq_len: int, cuda_graphs: bool = True) -> LLMEngine:
    config = EngineConfig(
        max_slots=slots, max_seq_len=max_seq_len, ignore_stop_tokens=True, cuda_graphs=cuda_graphs
    )
    return LLMEngine(model, config)


def _request(rid: str, n: int, seed: int) -> Request:
    return Request(rid, tuple(range(n)), tuple(seed * 1000 + i for i in range(n)), SAMPLING)


def step_costs(
    engine: LLMEngine,
    points: list[tuple[int, int]],
    steps: int,
    seed: int = 0,
    on_row: Callable[[dict], None] | None = None,
    allow: Callable[[int, int], bool] | None = None,
) -> list[dict]:
    """For each (batch, context) point, in the order given: one prompt of `context` tokens (one random
    prompt per context) prefilled and forked into `batch` samples, then `steps` engine steps timed (the
    first step, which prefills and forks, is timed apart). `on_row` sees each row as soon as it is measured
    (the benchmark saves its JSON there, so a run cut short keeps the points it finished); a point for
    which `allow(batch, context)` is false is left out."""
    vocab = engine.runner.model.config.vocab_size
    gen = torch.Generator().manual_seed(seed)
    prompts: dict[int, list[int]] = {}
    rows = []
    for batch, context in points:
        if allow is not None and not allow(batch, context):
            continue
        if context not in prompts:
            prompts[context] = torch.randint(3, vocab, (context,), generator=gen).tolist()
        engine.add_request(
            _request(f"c{context}-b{batch}", batch, seed), prompts[context], [steps + 2] * batch
        )
        sync(engine.runner.device)
        start = time.perf_counter()
        engine.step()  # admits, prefills, forks, first decode (may also capture graphs on first use)
        sync(engine.runner.device)
        first_step = time.perf_counter() - start
        clock = DeviceClock(engine.runner)
        walls, devices = [], []
        for _ in range(steps):
            start = time.perf_counter()
            engine.step()  # ends in the step's host sync (.tolist() of the new tokens)
            walls.append(time.perf_counter() - start)
            devices.append(clock.take())
        clock.remove()
        while engine.has_work():
            engine.step()
        wall, device = statistics.median(walls), statistics.median(devices)
        row = {
            "batch": batch,
            "context": context,
            "ms_per_step": round(wall * 1000, 3),
            "device_ms_per_step": round(device * 1000, 3),
            "host_overhead_share": round(max(0.0, 1 - device / wall), 4),
            "tokens_per_second": round(batch / wall, 1),
            "first_step_ms": round(first_step * 1000, 1),
        }
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def prefill_seconds(engine: LLMEngine, prompt_len: int, repeats: int = 3) -> float:
    """Median wall time of one `runner.prefill` of `prompt_len` random tokens into slot 0 (the engine's
    pool must exist and hold no live sequence: call it between workloads)."""
    vocab = engine.runner.model.config.vocab_size
    runner = engine.runner
    times = []
    for i in range(repeats):
        prompt = torch.randint(3, vocab, (prompt_len,), generator=torch.Generator().manual_seed(i)).tolist()
        sync(runner.device)
        start = time.perf_counter()
        runner.prefill([prompt], [0])
        sync(runner.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_workload(engine: LLMEngine, workload) -> dict:
    """Every sample of `workload` through the engine; wall seconds, tokens/s, and device time share."""
    clock = DeviceClock(engine.runner)
    for i, (prompt, lengths, seeds) in enumerate(
        zip(workload.prompts, workload.lengths, workload.seeds, strict=True)
    ):
        request = Request(f"{workload.name}{i}", tuple(range(len(seeds))), tuple(seeds), SAMPLING)
        engine.add_request(request, prompt, max_new_tokens=lengths)
    sync(engine.runner.device)
    steps0 = engine.stats.steps
    start = time.perf_counter()
    tokens = 0
    while engine.has_work():
        tokens += sum(seq.num_generated_tokens for seq in engine.step())
    sync(engine.runner.device)
    seconds = time.perf_counter() - start
    device = clock.take()
    clock.remove()
    return {
        "seconds": round(seconds, 3),
        "generated_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1),
        "decode_steps": engine.stats.steps - steps0,
        "host_overhead_share": round(max(0.0, 1 - device / seconds), 4),
    }
