"""ModelRunner: owns the model and its slot-indexed StatePool (and sizes it); runs a scheduled Batch.

`run(batch)` is the device half of a step: prefill the batch's problems, fork each parent state into its
new samples' slots, draw the new samples' first tokens from the prefill logits, decode one token for
every row, and read the tokens back: the step's one host sync. On CUDA with the Triton ops, `decode`
replays a CUDA graph per padded batch size (graphs.py); elsewhere it calls the model eagerly.

Sizing (`allocate_for`): `max_seq_len` = the longest queued prompt + max_new_tokens rounded up to
`seq_len_multiple` (or `EngineConfig.max_seq_len`), never past the context limit; `max_slots` slots, or
as many as the measured free CUDA memory allows (`cpu_slots` on CPU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence as Seq

import torch

from model_backends.sambay.engine.config import EngineConfig, context_limit
from model_backends.sambay.engine.graphs import DecodeGraphs
from model_backends.sambay.engine.sampler import as_int64, sample
from model_backends.sambay.engine.scheduler import Batch
from model_backends.sambay.engine.sequence import Sequence
from model_backends.sambay.errors import ConfigError, EngineError


class ModelRunner:
    """`config.cuda_graphs`: capture decode graphs when the device is CUDA and the model's ops run
    Triton. `padded_eager` (tests): run the graph path's padded static-buffer decode without capturing,
    on any device."""

    def __init__(
        self,
        model: torch.nn.Module,
        config: EngineConfig = EngineConfig(),
        state_dtype: torch.dtype | None = None,
        padded_eager: bool = False,
    ) -> None:
        self.model, self.config = model, config
        self.device = next(model.parameters()).device
        self.state_dtype = state_dtype
        self.cuda_graphs, self.padded_eager = config.cuda_graphs, padded_eager
        declared = getattr(model.config, "max_position_embeddings", None)
        self.context_limit = context_limit(config.context_limit, declared)
        self.pool = None  # built by `allocate_for` once the engine knows the longest sequence it must hold
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

    # -- the pool ---------------------------------------------------------------------------------

    def allocate_for(self, longest: int) -> None:
        """(Re)build the pool for sequences of up to `longest` tokens (prompt + max_new_tokens), sized
        as the module docstring says. Only call when no slot holds live state."""
        cfg = self.config
        if cfg.max_seq_len is not None:
            max_seq_len = max(cfg.max_seq_len, longest)
        else:
            max_seq_len = math.ceil(longest / cfg.seq_len_multiple) * cfg.seq_len_multiple
        max_seq_len = min(max_seq_len, self.context_limit)
        self.allocate(self._num_slots(max_seq_len), max_seq_len)

    def allocate(self, num_slots: int, max_seq_len: int) -> None:
        """(Re)build the pool at this size. Only call when no slot holds live state."""
        self.pool = self.graphs = None  # graphs hold the old pool's addresses: drop them first
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        mode = self.graph_mode
        self.pool = self.model.new_state_pool(
            num_slots, max_seq_len, dtype=self.state_dtype, device=self.device, scratch_slot=mode != "eager"
        )
        if mode != "eager":
            self.graphs = DecodeGraphs(self.model, self.pool, capture=mode == "capture")

    def _num_slots(self, max_seq_len: int) -> int:
        cfg = self.config
        if cfg.max_slots is not None:
            if cfg.max_slots < 1:
                raise ConfigError(f"--max-slots must be >= 1, got {cfg.max_slots}")
            return cfg.max_slots
        if self.device.type != "cuda":
            return cfg.cpu_slots
        budget = self.free_memory_for_slots(cfg.gpu_memory_fraction, cfg.max_prefill_tokens)
        # one row less than the budget holds: the padded (CUDA graph) decode adds a scratch slot
        slots = min(cfg.max_memory_slots, budget // self.bytes_per_slot(max_seq_len) - 1)
        if slots < 1:
            raise EngineError(
                f"not enough GPU memory for one sequence of {max_seq_len} tokens; "
                "lower --max-new-tokens or free the GPU"
            )
        return int(slots)

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

    # -- one step ---------------------------------------------------------------------------------

    def run(self, batch: Batch) -> list[int]:
        """The batch's tokens on the host: the new samples' first tokens, then one per decode row (empty
        when there is no row to decode). Nothing before the final read waits for the device."""
        if batch.prefills:
            prompts = [group.prompt_ids for group, _ in batch.prefills]
            logits = self.prefill(prompts, [slot for _, slot in batch.prefills])
            for (group, _), row in zip(batch.prefills, logits, strict=True):
                group.first_logits = row
        # Copy parent states before any decode writes into a parent slot taken over by its last sample.
        copies: dict[int, tuple[int, list[int]]] = {}  # parent slot -> (prompt length, sample slots)
        for seq, group, src in batch.starts:
            if src is not None:
                copies.setdefault(src, (len(group.prompt_ids), []))[1].append(seq.slot)
        for src, (length, dsts) in copies.items():
            self.fork(src, dsts, length)
        new, running = batch.new, batch.running
        first_tokens = None
        if new:
            first_logits = torch.stack([group.first_logits for _, group, _ in batch.starts])
            first_tokens = self.sample(first_logits, new, [0] * len(new))
            for _, group, _ in batch.starts:
                if group.parent_slot is None:
                    group.first_logits = None  # no sample of it waits on the parent: drop the [V] row
        rows = running + new
        if not rows:
            return []
        tokens = torch.tensor([s.generated[-1] for s in running], dtype=torch.long, device=self.device)
        if first_tokens is not None:
            tokens = torch.cat([tokens, first_tokens])
        logits = self.decode(tokens, [s.slot for s in rows])
        next_tokens = self.sample(logits, rows, [len(s.generated) for s in running] + [1] * len(new))
        # The step's single host sync: the first tokens of new samples, then one token per row.
        return torch.cat([first_tokens, next_tokens]).tolist() if new else next_tokens.tolist()

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
