"""ModelRunner: owns the model and its slot-indexed StatePool; runs prefill, fork, decode and sampling.

Everything here stays on the model's device and never syncs the host: the engine reads the sampled
tokens once per step. On CUDA with the Triton ops, `decode` replays a CUDA graph per padded batch size
(graphs.py); elsewhere it calls the model eagerly.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

import torch

from model_backends.sambay.engine.graphs import DecodeGraphs
from model_backends.sambay.engine.sampler import as_int64, sample
from model_backends.sambay.engine.sequence import Sequence


class ModelRunner:
    """`cuda_graphs`: capture decode graphs when the device is CUDA and Triton imports. `padded_eager`
    (tests): run the graph path's padded static-buffer decode without capturing, on any device."""

    def __init__(
        self,
        model: torch.nn.Module,
        state_dtype: torch.dtype | None = None,
        cuda_graphs: bool = True,
        padded_eager: bool = False,
    ) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.state_dtype = state_dtype
        self.cuda_graphs, self.padded_eager = cuda_graphs, padded_eager
        self.pool = None  # built by `allocate` once the engine knows the longest sequence it must hold
        self.graphs: DecodeGraphs | None = None

    @property
    def graph_mode(self) -> str:
        """ "capture" (CUDA graphs), "padded" (their padding, run eagerly) or "eager"."""
        if self.cuda_graphs and self.device.type == "cuda" and self.model.ops.triton_active():
            return "capture"
        return "padded" if self.padded_eager else "eager"

    @property
    def num_slots(self) -> int:
        return 0 if self.pool is None else self.pool.num_slots

    @property
    def max_seq_len(self) -> int:
        return 0 if self.pool is None else self.pool.max_seq_len

    def allocate(self, num_slots: int, max_seq_len: int) -> None:
        """(Re)build the pool. Only call when no slot holds live state."""
        self.pool = self.graphs = None  # graphs hold the old pool's addresses: drop them first
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        mode = self.graph_mode
        self.pool = self.model.new_state_pool(
            num_slots, max_seq_len, dtype=self.state_dtype, device=self.device, scratch_slot=mode != "eager"
        )
        if mode != "eager":
            self.graphs = DecodeGraphs(self.model, self.pool, capture=mode == "capture")

    def bytes_per_slot(self, max_seq_len: int) -> int:
        from model_backends.sambay.model.state import StatePool

        dtype = self.state_dtype or next(self.model.parameters()).dtype
        return StatePool.bytes_per_slot(self.model.config, max_seq_len, dtype)

    def free_memory_for_slots(self, fraction: float, prefill_tokens: int) -> int:
        """CUDA: bytes the pool may take, measured after a warm-up prefill of `prefill_tokens` tokens so the
        activation peak of the largest prefill the scheduler will run is left free."""
        self.pool = None
        torch.cuda.empty_cache()
        warmup = self.model.new_state_pool(1, prefill_tokens + 1, dtype=self.state_dtype, device=self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        before = torch.cuda.memory_allocated(self.device)
        with torch.inference_mode():
            prompt = torch.zeros(prefill_tokens, dtype=torch.long, device=self.device)
            self.model.prefill([prompt], torch.zeros(1, dtype=torch.long, device=self.device), warmup)
        activation_peak = torch.cuda.max_memory_allocated(self.device) - before
        del warmup
        torch.cuda.empty_cache()
        free, _ = torch.cuda.mem_get_info(self.device)
        return max(0, int(free * fraction) - 2 * activation_peak)

    @torch.inference_mode()
    def prefill(self, prompts: list[list[int]], slots: Seq[int]) -> torch.Tensor:
        """Last-token logits [B, V] of each prompt; writes each prompt's state into its slot."""
        tensors = [torch.tensor(p, dtype=torch.long, device=self.device) for p in prompts]
        return self.model.prefill(tensors, self._long(slots), self.pool)

    def fork(self, src: int, dsts: Seq[int], length: int | None = None) -> None:
        """Copy slot `src`'s state (and length) into every slot of `dsts`; `length`, the source's
        sequence length, limits the copy of the full-attention K/V to its filled rows."""
        self.pool.copy_(src, list(dsts), length)

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, slots: Seq[int]) -> torch.Tensor:
        """Feed one token per sequence (int64 [B] on the device); next-token logits [B, V].

        The engine keeps every sequence inside its slot (it knows the lengths on the host), so the
        device-side bounds check, a host sync, runs only off CUDA."""
        if self.graphs is not None:
            logits = self.graphs.run(tokens, slots)
            if logits is not None:
                return logits
        check = self.device.type != "cuda"
        return self.model.decode(tokens, self._long(slots), self.pool, check_bounds=check)

    @torch.inference_mode()
    def sample(self, logits: torch.Tensor, seqs: list[Sequence], steps: Seq[int]) -> torch.Tensor:
        """Draw one token per row with each sequence's own sampling params, seed and step; int64 [B]."""
        if all(s.sampling.temperature == 0 for s in seqs):
            return logits.argmax(dim=-1)  # all greedy (known on the host): skip the per-row sort
        temperature = torch.tensor([s.sampling.temperature for s in seqs], device=self.device)
        top_p = torch.tensor([s.sampling.top_p for s in seqs], device=self.device)
        seeds = self._long([as_int64(s.seed) for s in seqs])
        return sample(logits, temperature, top_p, seeds, self._long(steps), ops=self.model.ops)

    def _long(self, values: Seq[int]) -> torch.Tensor:
        return torch.tensor(list(values), dtype=torch.long, device=self.device)
