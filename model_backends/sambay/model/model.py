"""SambaYForCausalLM: Phi-4-mini-flash-reasoning in plain PyTorch (sambay.md 4 and 5).

`layer_plan(config)` (config.py) is the architecture; each layer runs its own prefill / decode over the
state view the pool hands it (layers.py, state.py). Three entry points share the layers:
- `forward(input_ids)`: full causal forward over [B, T], no state;
- `prefill(prompts, slots, pool)`: each prompt alone, state written to its slot; after the full-attention
  layer has projected K/V for every token only the last token continues (sambay.md 5.2: the
  cross-decoder's earlier positions feed nothing but their own logits);
- `decode(token_ids, slots, pool)`: one token per sequence against the pool.

`ops` (ops/dispatch.py) says which implementation every op runs; the model is given it at construction
and passes it down each call. `using_ops` swaps it for a block (tests comparing the two paths).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from model_backends.sambay.errors import RequestError

from ..ops.dispatch import AUTO, Ops
from .config import SambaYConfig, layer_plan
from .context import DecodeContext, PrefillContext
from .layers import DecoderLayer
from .state import LayerState, StatePool


class SambaYModel(nn.Module):
    def __init__(self, config: SambaYConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(
            DecoderLayer(config, idx, kind) for idx, kind in enumerate(layer_plan(config))
        )
        self.final_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class SambaYForCausalLM(nn.Module):
    def __init__(
        self,
        config: SambaYConfig,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        ops: Ops = AUTO,
    ):
        super().__init__()
        self.config = config
        self.plan = layer_plan(config)
        self.ops = ops
        with torch.device(device):
            self.model = SambaYModel(config)
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        # A_log, D and the lambda vectors stay fp32 (they were created fp32; keep them so).
        for name, param in self.named_parameters():
            if not _is_fp32_param(name):
                param.data = param.data.to(dtype)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        dtype: torch.dtype = torch.bfloat16,
        device: torch.device | str = "cpu",
        revision: str | None = None,
        ops: Ops = AUTO,
    ) -> SambaYForCausalLM:
        from .loader import load_model

        return load_model(path, dtype=dtype, device=device, revision=revision, ops=ops)

    @contextmanager
    def using_ops(self, ops: Ops) -> Iterator[SambaYForCausalLM]:
        """Run the model with `ops` inside the block, then restore its own."""
        before, self.ops = self.ops, ops
        try:
            yield self
        finally:
            self.ops = before

    @property
    def dtype(self) -> torch.dtype:
        return self.model.embed_tokens.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.model.embed_tokens.weight.device

    def num_parameters(self) -> int:
        """Unique parameters (the tied embedding / lm_head counted once)."""
        return sum(p.numel() for p in self.parameters())

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        norm = self.model.final_layernorm
        return self.lm_head(norm(h.to(norm.weight.dtype))).float()

    def _prefill_layers(
        self, input_ids: torch.Tensor, states: list[LayerState], ctx: PrefillContext
    ) -> torch.Tensor:
        h = self.model.embed_tokens(input_ids)
        for layer, state in zip(self.model.layers, states, strict=True):
            h = layer.prefill(h, state, ctx)
        return h

    # ---------------------------------------------------------------- full forward, no state
    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids [B, T] -> logits [B, T, V] (fp32)."""
        no_state = [None] * len(self.plan)
        return self._logits(self._prefill_layers(input_ids, no_state, PrefillContext(self.ops)))

    # ---------------------------------------------------------------- incremental decoding
    def new_state_pool(
        self,
        num_slots: int,
        max_seq_len: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        scratch_slot: bool = False,
    ) -> StatePool:
        return StatePool(
            self.config, num_slots, max_seq_len, dtype or self.dtype, device or self.device, scratch_slot
        )

    @torch.no_grad()
    def prefill(self, prompts: list[torch.Tensor], slots: torch.Tensor, pool: StatePool) -> torch.Tensor:
        """prompts: B token tensors [T_i]; slots [B]. Writes each sequence's state into its slot, sets
        pool.seq_lens[slot] = T_i and returns the last-token logits [B, V] (fp32). Each prompt runs
        alone, so results never depend on the batch."""
        slots = torch.as_tensor(slots, dtype=torch.long)
        if len(prompts) != len(slots):
            raise ValueError(f"{len(prompts)} prompts but {len(slots)} slots")
        logits = []
        for prompt, slot in zip(prompts, slots.tolist(), strict=True):
            prompt = torch.as_tensor(prompt, dtype=torch.long)
            T = int(prompt.shape[0])
            if not 0 < T <= pool.max_seq_len:
                raise RequestError(f"prompt of {T} tokens does not fit a state slot of {pool.max_seq_len}")
            pool.reset_([slot])
            ctx = PrefillContext(self.ops, slot)
            h = self._prefill_layers(prompt.to(self.device)[None], pool.layer_states, ctx)
            pool.seq_lens[slot] = T
            logits.append(self._logits(h[0, -1]))
        return torch.stack(logits)

    @torch.no_grad()
    def decode(
        self,
        token_ids: torch.Tensor,
        slots: torch.Tensor,
        pool: StatePool,
        check_bounds: bool = True,
    ) -> torch.Tensor:
        """token_ids [B], slots [B] (distinct, except that pad rows may all name pool.scratch): append
        one token per sequence at position pool.seq_lens[slot], update every state, increment seq_lens;
        returns logits [B, V] (fp32).

        `check_bounds` reads the longest position back to the host to refuse a full slot; the engine
        passes False (it knows every length on the host) so that a CUDA step never waits for the device
        and can be captured in a CUDA graph."""
        slots = torch.as_tensor(slots, dtype=torch.long).to(pool.seq_lens.device)
        if token_ids.shape != slots.shape:
            raise ValueError(
                f"decode takes one token per slot, got {tuple(token_ids.shape)} for {len(slots)}"
            )
        positions = pool.seq_lens[slots]  # [B] position of the new token
        if check_bounds and int(positions.max()) >= pool.max_seq_len:
            raise RequestError(f"sequence reached max_seq_len={pool.max_seq_len} of its state slot")
        lens = positions + 1  # keys visible including the new token
        ctx = DecodeContext(self.ops, slots, positions, lens, ring_rows=positions % pool.window)
        h = self.model.embed_tokens(token_ids.to(self.device))  # [B, H]
        for layer, state in zip(self.model.layers, pool.layer_states, strict=True):
            h = layer.decode(h, state, ctx)
        pool.seq_lens[slots] = lens
        if pool.scratch is not None:  # pad rows never advance: the scratch slot stays at position 0
            pool.seq_lens[pool.scratch] = 0
        return self._logits(h)


def _is_fp32_param(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf in ("A_log", "D") or leaf.startswith("lambda_")
