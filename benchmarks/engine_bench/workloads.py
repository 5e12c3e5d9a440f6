"""The issue's two workloads, their decode schedules, and their time predicted from measured step costs.

(a) paper: one 2K-token prompt, 64 samples, 32K generated tokens each (fixed length);
(b) eval: 30 AIME-like prompts (~150 tokens) x 64 samples, generated lengths drawn from 2K-32K.

Run end to end, (a) is 2M generated tokens and (b) ~33M: hours, more than a GPU session has. So the
benchmark measures the cost of one decode step on a grid of (batch, context) points, simulates each
workload's schedule step by step (how many sequences decode and at what contexts: continuous batching
for evalkit's engine, lockstep static batches for `generate`), and sums the interpolated step costs. A
scaled-down run of each workload on the real engine checks the prediction (predicted / measured).
"""

from __future__ import annotations

import bisect
import heapq
import random
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    name: str
    prompts: list[list[int]]  # one per problem
    lengths: list[list[int]]  # generated tokens per sample, per problem
    seeds: list[list[int]]

    @property
    def num_samples(self) -> int:
        return sum(len(x) for x in self.lengths)

    @property
    def generated_tokens(self) -> int:
        return sum(sum(x) for x in self.lengths)

    @property
    def longest(self) -> int:
        """Prompt + generation of the longest sample: the slot / static-cache length it needs."""
        return max(len(p) + max(ls) for p, ls in zip(self.prompts, self.lengths, strict=True))

    def describe(self) -> dict:
        all_lengths = [n for ls in self.lengths for n in ls]
        return {
            "name": self.name,
            "problems": len(self.prompts),
            "samples": self.num_samples,
            "prompt_tokens": sorted({len(p) for p in self.prompts}),
            "gen_len_min_mean_max": [min(all_lengths), sum(all_lengths) / len(all_lengths), max(all_lengths)],
            "generated_tokens": self.generated_tokens,
        }


def _make(name, vocab, problems, samples, prompt_len, length_of, seed) -> Workload:
    rng = random.Random(seed)
    prompts = [[rng.randrange(3, vocab) for _ in range(prompt_len)] for _ in range(problems)]
    lengths = [[length_of(rng) for _ in range(samples)] for _ in range(problems)]
    seeds = [[rng.getrandbits(63) for _ in range(samples)] for _ in range(problems)]
    return Workload(name, prompts, lengths, seeds)


def paper(vocab: int, prompt_len=2048, samples=64, gen_len=32768, seed=0, scale: int = 1) -> Workload:
    return _make("paper", vocab, 1, samples, prompt_len // scale, lambda rng: gen_len // scale, seed)


def evaluation(
    vocab: int, problems=30, samples=64, prompt_len=150, min_len=2048, max_len=32768, seed=0, scale: int = 1
) -> Workload:
    lo, hi = min_len // scale, max_len // scale
    return _make("eval", vocab, problems, samples, prompt_len, lambda rng: rng.randint(lo, hi), seed)


# ---------------------------------------------------------------------------------------- schedules
def continuous_schedule(w: Workload, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Per decode step: (sequences decoding, the sum of their contexts), for evalkit's engine: samples
    start in order in the first free slot (problems forked from one prefill), a finished sample frees its
    slot at once. A sample of length L decodes L steps (its first token comes from the prefill, the last
    is sampled from the step that emits it)."""
    free_at = [0] * slots  # step at which each slot frees up
    heapq.heapify(free_at)
    starts, ends, prompt_lens = [], [], []
    for prompt, lengths in zip(w.prompts, w.lengths, strict=True):
        for length in lengths:
            start = heapq.heappop(free_at)
            starts.append(start)
            ends.append(start + length)
            prompt_lens.append(len(prompt))
            heapq.heappush(free_at, start + length)
    steps = max(ends)
    count = np.zeros(steps + 1)
    offset = np.zeros(steps + 1)  # context at step t of a sample started at s: prompt + (t - s)
    for s, e, p in zip(starts, ends, prompt_lens, strict=True):
        count[s] += 1
        count[e] -= 1
        offset[s] += p - s
        offset[e] -= p - s
    count, offset = np.cumsum(count)[:steps], np.cumsum(offset)[:steps]
    return count, offset + count * np.arange(steps)


def static_schedule(w: Workload, batch: int) -> list[tuple[int, int, int]]:
    """`generate`'s batches: (rows, prompt length, steps) for each chunk of `batch` samples in order; a
    chunk decodes until its longest sample is done (finished rows keep decoding as padding)."""
    rows = [(len(p), n) for p, ls in zip(w.prompts, w.lengths, strict=True) for n in ls]
    out = []
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        out.append((len(chunk), max(p for p, _ in chunk), max(n for _, n in chunk)))
    return out


# ---------------------------------------------------------------------------------------- costs
class StepCost:
    """Seconds of one decode step at (batch, context), interpolated linearly in context between measured
    points and linearly in batch between measured batches (clamped at the ends of the grid)."""

    def __init__(self, points: dict[tuple[int, int], float]) -> None:
        self.batches = sorted({b for b, _ in points})
        self.by_batch = {b: sorted((c, t) for (bb, c), t in points.items() if bb == b) for b in self.batches}

    def _at_batch(self, batch: int, context: float) -> float:
        row = self.by_batch[batch]
        contexts = [c for c, _ in row]
        i = bisect.bisect_left(contexts, context)
        if i == 0:
            return row[0][1]
        if i == len(row):
            (c0, t0), (c1, t1) = row[-2:] if len(row) > 1 else (row[-1], row[-1])
        else:
            (c0, t0), (c1, t1) = row[i - 1], row[i]
        if c1 == c0:
            return t1
        return t0 + (t1 - t0) * (context - c0) / (c1 - c0)  # beyond the last point: extrapolate the slope

    def __call__(self, batch: float, context: float) -> float:
        bs = self.batches
        i = bisect.bisect_left(bs, batch)
        if i < len(bs) and bs[i] == batch:
            return self._at_batch(bs[i], context)
        if i == 0:
            return self._at_batch(bs[0], context)
        if i == len(bs):
            return self._at_batch(bs[-1], context) * batch / bs[-1]  # beyond the grid: proportional
        b0, b1 = bs[i - 1], bs[i]
        t0, t1 = self._at_batch(b0, context), self._at_batch(b1, context)
        return t0 + (t1 - t0) * (batch - b0) / (b1 - b0)


def predict_continuous(w: Workload, slots: int, cost: StepCost, prefill_seconds: float) -> dict:
    count, total_context = continuous_schedule(w, slots)
    mean_context = np.divide(total_context, count, out=np.zeros_like(total_context), where=count > 0)
    # steps with the same batch and a context within 64 tokens cost the same: evaluate once per bucket
    seconds = 0.0
    keys = count.astype(np.int64) * 1_000_000 + (mean_context // 64).astype(np.int64)
    uniq, counts = np.unique(keys, return_counts=True)
    for key, n in zip(uniq, counts, strict=True):
        batch, ctx = int(key // 1_000_000), int(key % 1_000_000) * 64 + 32
        if batch:
            seconds += n * cost(batch, ctx)
    seconds += len(w.prompts) * prefill_seconds
    return _summary(w, seconds, steps=len(count), mean_batch=float(count.mean()))


def predict_static(w: Workload, batch: int, cost: StepCost, prefill_seconds_per_row: float) -> dict:
    seconds, steps = 0.0, 0
    for rows, prompt_len, n in static_schedule(w, batch):
        for ctx in range(prompt_len, prompt_len + n, 64):
            seconds += min(64, prompt_len + n - ctx) * cost(rows, ctx + 32)
        seconds += rows * prefill_seconds_per_row
        steps += n
    return _summary(w, seconds, steps=steps, mean_batch=w.num_samples * 1.0 / len(static_schedule(w, batch)))


def _summary(w: Workload, seconds: float, steps: int, mean_batch: float) -> dict:
    seconds = float(seconds)  # numpy sums: plain floats for the JSON
    return {
        "seconds": round(seconds, 3),
        "generated_tokens": w.generated_tokens,
        "tokens_per_second": round(w.generated_tokens / seconds, 1),
        "decode_steps": int(steps),
        "mean_batch": round(float(mean_batch), 2),
    }
