"""Output layouts shared by the Mamba prefill kernels."""

from __future__ import annotations

import torch


def empty_channels_last_like(x: torch.Tensor) -> torch.Tensor:
    """torch.empty of x's [B, C, T] shape, laid out [B, T, C] (channel stride 1) when x's channels
    are its fastest dim (the layer's transposed views), else contiguous."""
    batch, channels, seqlen = x.shape
    if x.stride(1) < x.stride(2):
        return torch.empty(batch, seqlen, channels, dtype=x.dtype, device=x.device).transpose(1, 2)
    return torch.empty(batch, channels, seqlen, dtype=x.dtype, device=x.device)
