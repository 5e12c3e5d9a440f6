"""Decode steps replayed from CUDA graphs, one graph per padded batch size.

A decode step of the published model launches a few hundred small kernels; at batch 64 the GPU work is
~10 ms, and launching them one by one from Python costs a similar amount of host time. A CUDA graph
records the whole step once per batch size and replays it with one launch.

A graph replays fixed shapes and fixed addresses, so:
- the batch is padded up to the next captured size (1, 2, 4, 8, then multiples of 16); pad rows name the
  pool's scratch slot (state.py), so they run the same kernels on a row no sequence owns;
- tokens and slots are copied into static buffers that the graph reads; logits come out in a static
  buffer that the next replay overwrites (the caller samples from it before the next step);
- the step must not synchronise with the host: `model.decode(..., check_bounds=False)` and the Triton
  ops (which read lengths on the device) guarantee that. The reference ops do read lengths back, so
  graphs are only captured when the Triton path is active.
- graphs hold the pool's addresses: a rebuilt pool needs new graphs (ModelRunner.allocate does that).

`capture=False` runs the same padded, static-buffer step eagerly; CPU tests use it to check the padding.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Sequence

import torch

logger = logging.getLogger(__name__)

MAX_GRAPH_BATCH = 512  # larger batches run eagerly: their launch overhead is small next to their work


def graph_batch_sizes(max_batch: int) -> list[int]:
    """Captured sizes for a pool of `max_batch` slots: 1, 2, 4, 8, 16, 32, 48, ... (capped)."""
    top = min(max_batch, MAX_GRAPH_BATCH)
    sizes = [s for s in (1, 2, 4, 8) if s <= top] + list(range(16, top + 1, 16))
    if top not in sizes:
        sizes.append(top)
    return sorted(sizes)


class DecodeGraphs:
    def __init__(self, model: torch.nn.Module, pool, capture: bool) -> None:
        if pool.scratch is None:
            raise ValueError("padded decode needs a state pool with a scratch slot")
        self.model, self.pool, self.capture = model, pool, capture
        self.sizes = graph_batch_sizes(pool.num_slots)
        device = pool.seq_lens.device
        self.tokens = torch.zeros(self.sizes[-1], dtype=torch.long, device=device)
        self.slots = torch.full((self.sizes[-1],), pool.scratch, dtype=torch.long, device=device)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.outputs: dict[int, torch.Tensor] = {}
        self.capture_seconds = 0.0
        if capture:
            self._capture_all()

    def padded_size(self, batch: int) -> int | None:
        """The captured size a batch of `batch` rows runs at, or None when it is larger than all of them."""
        i = bisect.bisect_left(self.sizes, batch)
        return self.sizes[i] if i < len(self.sizes) else None

    def _step(self, size: int) -> torch.Tensor:
        return self.model.decode(self.tokens[:size], self.slots[:size], self.pool, check_bounds=False)

    @torch.inference_mode()
    def _capture_all(self) -> None:
        start = time.perf_counter()
        memory_pool = None
        self.slots.fill_(self.pool.scratch)  # capture touches only the scratch slot
        for size in reversed(self.sizes):  # largest first: the smaller graphs reuse its memory pool
            self._step(size)  # warm-up: Triton compiles, allocator caches fill
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=memory_pool):
                self.outputs[size] = self._step(size)
            memory_pool = graph.pool() if memory_pool is None else memory_pool
            self.graphs[size] = graph
        torch.cuda.synchronize()
        self.capture_seconds = time.perf_counter() - start
        logger.info(
            "captured %d decode graphs (batch %s) in %.1f s",
            len(self.sizes),
            ",".join(map(str, self.sizes)),
            self.capture_seconds,
        )

    def run(self, tokens: torch.Tensor, slots: Sequence[int]) -> torch.Tensor | None:
        """Logits [B, V] for one decode step of B real rows (tokens on the device, slots from the host),
        or None when B exceeds the largest size (the caller then runs the step eagerly). The result is a
        view of a static buffer."""
        batch = tokens.shape[0]
        size = self.padded_size(batch)
        if size is None:
            return None
        self.tokens[:batch].copy_(tokens, non_blocking=True)
        self.slots[:batch].copy_(torch.tensor(slots, dtype=torch.long), non_blocking=True)  # one H2D copy
        if size > batch:  # pad rows: any token id will do (the buffer holds only real ones); slots must
            self.slots[batch:size].fill_(self.pool.scratch)  # be the scratch slot, never a stale live one
        if self.capture:
            self.graphs[size].replay()
            return self.outputs[size][:batch]
        return self._step(size)[:batch]
