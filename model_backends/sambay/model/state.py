"""Per-sequence decoding state in fixed slots (sambay.md 5), and the view of it each layer gets.

Per slot:
- every Mamba layer (L/4 + 1 of them): conv state [d_inner, d_conv] (the last d_conv raw inputs, HF
  convention) and SSM state [d_inner, d_state];
- every SWA layer: a ring of min(window, max_seq_len) K and V rows [kv_heads, head_dim], position p at
  ring index p % window;
- the full-attention layer: K and V for every position [max_seq_len, kv_heads, head_dim], which the
  cross-attention layers read. GMU and cross layers own nothing.

The SSM state is kept in fp32 even for a bf16 model: it is a running product-sum over the whole
sequence, and rounding it to bf16 after every token (as the HF cache does) drifts away from the prefill
scan, which keeps it in fp32 throughout. It is a tiny part of the slot (~2.9 MB of ~21 MB + 5 KB/token
for the published model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .config import CROSS_ATTN, FULL_ATTN, MAMBA, MAMBA_MEMORY, SWA_ATTN, SambaYConfig, layer_plan

# The state group each layer kind owns, and the one cross layers read (the full attention's K/V).
OWNS = {MAMBA: "mamba", MAMBA_MEMORY: "mamba", SWA_ATTN: "swa", FULL_ATTN: "full"}
READS = {CROSS_ATTN: "full"}


@dataclass(frozen=True)
class MambaState:
    """One Mamba layer's state: conv [rows, d_inner, d_conv], ssm [rows, d_inner, d_state] (fp32)."""

    conv: torch.Tensor
    ssm: torch.Tensor


@dataclass(frozen=True)
class KVCache:
    """One attention layer's K and V [rows, R, Hkv, D]: a ring of R = min(window, max_seq_len) rows
    (sliding window, position p at row p % window) or one row per position (window None)."""

    k: torch.Tensor
    v: torch.Tensor
    window: int | None

    def write_prompt(self, slot: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store a prompt's K/V [T, Hkv, D] in `slot`: every row, or a ring's last min(T, R) rows."""
        T = k.shape[0]
        if self.window is None:
            self.k[slot, :T], self.v[slot, :T] = k, v
            return
        start = max(0, T - self.k.shape[1])
        rows = torch.arange(start, T, device=k.device) % self.window
        self.k[slot, rows] = k[start:].to(self.k.dtype)
        self.v[slot, rows] = v[start:].to(self.v.dtype)

    def write_token(self, slots: torch.Tensor, rows: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store one token's K/V [B, Hkv, D] per sequence at row `rows[b]` of slot `slots[b]`."""
        self.k[slots, rows], self.v[slots, rows] = k.to(self.k.dtype), v.to(self.v.dtype)


LayerState = MambaState | KVCache | None


@dataclass(frozen=True)
class _Spec:
    shape: tuple[int, ...]  # per slot, after the leading layer axis
    layers: int
    fp32: bool  # stored in fp32 whatever the state dtype
    per_position: bool  # axis 0 of `shape` is the sequence position (a fork copies the filled rows only)


def _specs(config: SambaYConfig, max_seq_len: int) -> dict[str, _Spec]:
    plan = layer_plan(config)
    n_mamba = sum(OWNS.get(kind) == "mamba" for kind in plan)
    n_swa = sum(OWNS.get(kind) == "swa" for kind in plan)
    assert sum(OWNS.get(kind) == "full" for kind in plan) == 1
    kv, d = config.num_key_value_heads, config.head_dim
    ring = min(config.sliding_window, max_seq_len)
    return {
        "conv": _Spec((config.d_inner, config.mamba_d_conv), n_mamba, False, False),
        "ssm": _Spec((config.d_inner, config.mamba_d_state), n_mamba, True, False),
        "swa_k": _Spec((ring, kv, d), n_swa, False, False),
        "swa_v": _Spec((ring, kv, d), n_swa, False, False),
        "full_k": _Spec((max_seq_len, kv, d), 1, False, True),
        "full_v": _Spec((max_seq_len, kv, d), 1, False, True),
    }


class StatePool:
    """Slot-indexed state tensors, each [layers, rows, ...] (`conv[m]` is [rows, d_inner, d_conv]) so a
    layer's state is one contiguous tensor a kernel can index by slot. `layer_states[i]` is the view
    layer i reads and writes (None for a layer without state).

    With `scratch_slot=True` one extra row (index `scratch`, == num_slots) is allocated that no sequence
    ever owns: a decode batch padded to a fixed size (CUDA graphs) points its pad rows at it, so every op
    sees a valid slot and a pad row can never write into a live one. Its length is reset to 0 by every
    decode, so it never runs past max_seq_len. It is not counted in `num_slots`."""

    def __init__(
        self,
        config: SambaYConfig,
        num_slots: int,
        max_seq_len: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        scratch_slot: bool = False,
    ):
        self.config, self.num_slots, self.max_seq_len = config, num_slots, max_seq_len
        self.dtype, self.window = dtype, config.sliding_window
        self.scratch: int | None = num_slots if scratch_slot else None
        rows = num_slots + int(scratch_slot)
        self._specs = _specs(config, max_seq_len)
        # zeros, not empty: masked cache rows are multiplied by exactly-zero weights, and 0 * NaN = NaN
        self.tensors: dict[str, torch.Tensor] = {
            name: torch.zeros(
                (spec.layers, rows, *spec.shape), dtype=torch.float32 if spec.fp32 else dtype, device=device
            )
            for name, spec in self._specs.items()
        }
        self.seq_lens = torch.zeros(rows, dtype=torch.long, device=device)
        self.layer_states = self._layer_states(layer_plan(config))

    def _layer_states(self, plan: tuple[str, ...]) -> list[LayerState]:
        t = self.tensors
        views = {  # each layer-major tensor split into its layers' views, handed out in plan order
            "mamba": iter([MambaState(c, s) for c, s in zip(t["conv"], t["ssm"], strict=True)]),
            "swa": iter([KVCache(k, v, self.window) for k, v in zip(t["swa_k"], t["swa_v"], strict=True)]),
            "full": iter([KVCache(k, v, None) for k, v in zip(t["full_k"], t["full_v"], strict=True)]),
        }
        owned: dict[str, LayerState] = {}
        states: list[LayerState] = []
        for kind in plan:
            if kind in OWNS:
                owned[OWNS[kind]] = state = next(views[OWNS[kind]])
            else:  # a reader (cross attention) gets the view its owner took; GMU layers get None
                state = owned.get(READS.get(kind, ""))
            states.append(state)
        return states

    # Named tensors: conv/ssm/swa_* are [layer, slot, ...]; full_k/full_v (one layer) are [slot, ...].
    @property
    def conv(self) -> torch.Tensor:
        return self.tensors["conv"]

    @property
    def ssm(self) -> torch.Tensor:
        return self.tensors["ssm"]

    @property
    def swa_k(self) -> torch.Tensor:
        return self.tensors["swa_k"]

    @property
    def swa_v(self) -> torch.Tensor:
        return self.tensors["swa_v"]

    @property
    def full_k(self) -> torch.Tensor:
        return self.tensors["full_k"][0]

    @property
    def full_v(self) -> torch.Tensor:
        return self.tensors["full_v"][0]

    def _slot_index(self, slots: Sequence[int]) -> torch.Tensor:
        slots = [int(s) for s in slots]  # checked on the host: no device sync
        if any(not 0 <= s < self.num_slots for s in slots):
            raise IndexError(f"slot out of range 0..{self.num_slots - 1}: {slots}")
        return torch.tensor(slots, dtype=torch.long, device=self.seq_lens.device)

    def slot_state(self, slot: int) -> dict[str, torch.Tensor]:
        """Views of one slot's state by tensor name, each [layers, ...] (for tests and debugging)."""
        return {name: tensor[:, slot] for name, tensor in self.tensors.items()}

    def copy_(self, src: int, dst: Sequence[int], length: int | None = None) -> None:
        """Fork: the state of slot `src` (all layers and its length) copied into every slot of `dst`.

        `length` (the source's sequence length, known to the caller) limits the full-attention copy to the
        rows that hold keys: a 150-token prompt in a 33K-row slot copies 150 rows, not 33K. Rows past it
        are never read (attention reads rows < length), so their stale contents do not matter."""
        index = self._slot_index(dst)
        if not index.numel():
            return
        if length is not None and not 0 <= length <= self.max_seq_len:
            raise ValueError(f"length {length} outside 0..{self.max_seq_len}")
        filled = slice(None) if length is None else slice(0, length)
        for name, tensor in self.tensors.items():
            rows = filled if self._specs[name].per_position else slice(None)
            # clone: the source row may be among the destinations' memory (src in dst)
            tensor[:, index, rows] = tensor[:, src : src + 1, rows].clone()
        self.seq_lens[index] = self.seq_lens[src].clone()

    def reset_(self, slots: Sequence[int]) -> None:
        index = self._slot_index(slots)
        for tensor in self.tensors.values():
            tensor[:, index] = 0
        self.seq_lens[index] = 0

    def nbytes(self) -> int:
        """Bytes of state (excluding the seq_lens bookkeeping) == rows * bytes_per_slot, where rows is
        num_slots plus the scratch slot if there is one."""
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    @staticmethod
    def bytes_per_slot(config: SambaYConfig, max_seq_len: int, dtype: torch.dtype) -> int:
        itemsize = torch.empty((), dtype=dtype).element_size()
        total = 0
        for spec in _specs(config, max_seq_len).values():
            numel = spec.layers
            for n in spec.shape:
                numel *= n
            total += numel * (4 if spec.fp32 else itemsize)
        return total
