"""Per-sequence decoding state in fixed slots (sambay.md 5).

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

import torch

from .config import FULL_ATTN, MAMBA, MAMBA_MEMORY, SWA_ATTN, SambaYConfig, layer_plan


def _shapes(config: SambaYConfig, max_seq_len: int) -> dict[str, tuple[tuple[int, ...], bool]]:
    """name -> (shape per slot with a leading layer axis where there is one, stored in fp32?)."""
    plan = layer_plan(config)
    n_mamba = sum(kind in (MAMBA, MAMBA_MEMORY) for kind in plan)
    n_swa = plan.count(SWA_ATTN)
    assert plan.count(FULL_ATTN) == 1
    kv, d = config.num_key_value_heads, config.head_dim
    ring = min(config.sliding_window, max_seq_len)
    return {
        "conv": ((n_mamba, config.d_inner, config.mamba_d_conv), False),
        "ssm": ((n_mamba, config.d_inner, config.mamba_d_state), True),
        "swa_k": ((n_swa, ring, kv, d), False),
        "swa_v": ((n_swa, ring, kv, d), False),
        "full_k": ((max_seq_len, kv, d), False),
        "full_v": ((max_seq_len, kv, d), False),
    }


class StatePool:
    """Slot-indexed state tensors. Layer-major layout (`conv[m]` is [num_slots, d_inner, d_conv]) so a
    layer's state is one contiguous tensor a kernel can index by slot.

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
        self.tensors: dict[str, torch.Tensor] = {}
        for name, (shape, fp32) in _shapes(config, max_seq_len).items():
            # zeros, not empty: masked cache rows are multiplied by exactly-zero weights, and 0 * NaN = NaN
            if name.startswith("full"):
                full_shape = (rows, *shape)
            else:
                full_shape = (shape[0], rows, *shape[1:])
            self.tensors[name] = torch.zeros(
                full_shape, dtype=torch.float32 if fp32 else dtype, device=device
            )
        self.seq_lens = torch.zeros(rows, dtype=torch.long, device=device)

    # Named views, [layer][slot, ...] or [slot, ...]
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
        return self.tensors["full_k"]

    @property
    def full_v(self) -> torch.Tensor:
        return self.tensors["full_v"]

    def _slot_index(self, slots: Sequence[int]) -> torch.Tensor:
        slots = [int(s) for s in slots]  # checked on the host: no device sync
        if any(not 0 <= s < self.num_slots for s in slots):
            raise IndexError(f"slot out of range 0..{self.num_slots - 1}: {slots}")
        return torch.tensor(slots, dtype=torch.long, device=self.seq_lens.device)

    def slot_state(self, slot: int) -> dict[str, torch.Tensor]:
        """Views of one slot's state, by tensor name (for tests and debugging)."""
        return {
            name: tensor[slot] if name.startswith("full") else tensor[:, slot]
            for name, tensor in self.tensors.items()
        }

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
        rows = slice(None) if length is None else slice(0, length)
        for name, tensor in self.tensors.items():
            # clone: the source row may be among the destinations' memory (src in dst)
            if name.startswith("full"):
                tensor[index, rows] = tensor[src, rows].clone()
            else:
                tensor[:, index] = tensor[:, src : src + 1].clone()
        self.seq_lens[index] = self.seq_lens[src].clone()

    def reset_(self, slots: Sequence[int]) -> None:
        index = self._slot_index(slots)
        for name, tensor in self.tensors.items():
            if name.startswith("full"):
                tensor[index] = 0
            else:
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
        for shape, fp32 in _shapes(config, max_seq_len).values():
            numel = 1
            for n in shape:
                numel *= n
            total += numel * (4 if fp32 else itemsize)
        return total
