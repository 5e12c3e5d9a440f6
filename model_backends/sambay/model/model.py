"""SambaYForCausalLM: Phi-4-mini-flash-reasoning in plain PyTorch (sambay.md 4 and 5).

Three entry points share the layers:
- `forward(input_ids)`: full causal forward over [B, T], no state;
- `prefill(prompts, slots, pool)`: each prompt alone, state written to its slot; after the full-attention
  layer has projected K/V for every token only the last token continues (sambay.md 5.2: the
  cross-decoder's earlier positions feed nothing but their own logits);
- `decode(token_ids, slots, pool)`: one token per sequence against the pool.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from model_backends.sambay.errors import RequestError

from .config import CROSS_ATTN, FULL_ATTN, GMU, MAMBA, MAMBA_MEMORY, SWA_ATTN, SambaYConfig, layer_plan
from .layers import DecoderLayer
from .state import StatePool


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
        self, config: SambaYConfig, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
    ):
        super().__init__()
        self.config = config
        self.plan = layer_plan(config)
        # Index of each stateful layer inside its pool tensor (Mamba layers, SWA layers).
        self.state_index: list[int | None] = []
        counts = {"mamba": 0, "swa": 0}
        for kind in self.plan:
            group = "mamba" if kind in (MAMBA, MAMBA_MEMORY) else "swa" if kind == SWA_ATTN else None
            self.state_index.append(counts[group] if group else None)
            if group:
                counts[group] += 1
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
    ) -> SambaYForCausalLM:
        from .loader import load_model

        return load_model(path, dtype=dtype, device=device, revision=revision)

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

    # ---------------------------------------------------------------- full forward, no state
    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids [B, T] -> logits [B, T, V] (fp32)."""
        return self._logits(self._run(input_ids, pool=None, slot=None))

    def _run(self, input_ids: torch.Tensor, pool: StatePool | None, slot: int | None) -> torch.Tensor:
        """All layers over [B, T]. With a pool (B == 1), state goes to `slot` and the cross-decoder runs on
        the last token only; returns the final hidden states [B, T or 1, H]."""
        h = self.model.embed_tokens(input_ids)
        memory = shared_k = shared_v = None
        window = self.config.sliding_window
        for layer, kind, index in zip(self.model.layers, self.plan, self.state_index, strict=True):
            u = layer.norm_in(h)
            if kind in (MAMBA, MAMBA_MEMORY):
                result = layer.attn(u)
                mixed, memory = result.out, result.memory if kind == MAMBA_MEMORY else memory
                if pool is not None:
                    pool.conv[index, slot] = result.conv_state[0]
                    pool.ssm[index, slot] = result.ssm_state[0]
            elif kind == SWA_ATTN:
                q, k, v = layer.attn.project(u)
                mixed = layer.attn.attend(q, k, v, window)
                if pool is not None:
                    _write_ring(pool, index, slot, k[0], v[0])
            elif kind == FULL_ATTN:
                q, shared_k, shared_v = layer.attn.project(u)
                if pool is not None:
                    T = input_ids.shape[1]
                    pool.full_k[slot, :T], pool.full_v[slot, :T] = shared_k[0], shared_v[0]
                    # From here on only the last token matters for the returned logits.
                    q, h, memory = q[:, -1:], h[:, -1:], memory[:, -1:]
                mixed = layer.attn.attend(q, shared_k, shared_v, None)
            elif kind == GMU:
                mixed = layer.attn(u, memory)
            elif kind == CROSS_ATTN:
                q, _, _ = layer.attn.project(u)
                mixed = layer.attn.attend(q, shared_k, shared_v, None)
            else:
                raise AssertionError(kind)
            h = layer.finish(h, mixed)
        return h

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
            h = self._run(prompt.to(self.device)[None], pool, slot)
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
        ring_index = positions % pool.window
        h = self.model.embed_tokens(token_ids.to(self.device))  # [B, H]
        memory = None
        for layer, kind, index in zip(self.model.layers, self.plan, self.state_index, strict=True):
            u = layer.norm_in(h)
            if kind in (MAMBA, MAMBA_MEMORY):
                result = layer.attn.step(u, pool.conv[index], pool.ssm[index], slots)
                mixed, memory = result.out, result.memory if kind == MAMBA_MEMORY else memory
            elif kind in (SWA_ATTN, FULL_ATTN):
                q, k, v = layer.attn.project(u)
                if kind == SWA_ATTN:
                    k_cache, v_cache, rows = pool.swa_k[index], pool.swa_v[index], ring_index
                else:
                    k_cache, v_cache, rows = pool.full_k, pool.full_v, positions
                k_cache[slots, rows], v_cache[slots, rows] = k.to(k_cache.dtype), v.to(v_cache.dtype)
                mixed = layer.attn.attend_cached(q, k_cache, v_cache, slots, lens)
            elif kind == GMU:
                mixed = layer.attn(u, memory)
            else:  # CROSS_ATTN reads the full-attention layer's cache, just extended by this token
                q, _, _ = layer.attn.project(u)
                mixed = layer.attn.attend_cached(q, pool.full_k, pool.full_v, slots, lens)
            h = layer.finish(h, mixed)
        pool.seq_lens[slots] = lens
        if pool.scratch is not None:  # pad rows never advance: the scratch slot stays at position 0
            pool.seq_lens[pool.scratch] = 0
        return self._logits(h)


def _write_ring(pool: StatePool, index: int, slot: int, k: torch.Tensor, v: torch.Tensor) -> None:
    """Store the last min(T, ring) K/V rows [T, Hkv, D] of a prompt at ring index position % window."""
    T, ring = k.shape[0], pool.swa_k.shape[2]
    start = max(0, T - ring)
    rows = torch.arange(start, T, device=k.device) % pool.window
    pool.swa_k[index, slot, rows] = k[start:].to(pool.swa_k.dtype)
    pool.swa_v[index, slot, rows] = v[start:].to(pool.swa_v.dtype)


def _is_fp32_param(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf in ("A_log", "D") or leaf.startswith("lambda_")
