"""The hf backend's packed decoding, `--backend-option pack_prompts=true`: the samples of several prompts
decoded as one left-padded batch.

By default a batch holds the samples of one prompt, forked from one batch-1 prefill (hf_backend.py). With
few samples per problem (the demo's n = 2) that leaves the CPU waiting on memory: a decode step of a small
model costs about the same for 1 row as for 16. Packed, consecutive requests' samples fill batches of up
to `batch_size` rows. Shorter prompts are padded on the left: the padding is masked out of attention
(`attention_mask`) and every row's positions count only its own tokens (`position_ids`), so a row computes
what it would alone, up to the float rounding of a longer reduction; as with batch composition
(hf_backend.py), a rare near-tie can resolve differently, so leave it off for strict per-sample isolation.
Each sample still draws only from its own seeded generator.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.core.errors import BackendError
from evalkit.core.types import GenerationRequest


@dataclass(frozen=True)
class Row:
    request: GenerationRequest
    prompt_ids: list[int]
    sample_index: int
    seed: int


def pack_prompts_of(extra: dict[str, Any]) -> bool:
    value = extra.get("pack_prompts", False)
    if not isinstance(value, bool):
        raise BackendError(f"backend option pack_prompts must be true or false, got {value!r}")
    return value


def packed_batches(
    encoded: Sequence[tuple[GenerationRequest, list[int]]], batch_size: int
) -> Iterator[list[Row]]:
    """Rows in request order, cut into batches of at most `batch_size`; a batch never mixes sampling
    parameters (one run has one, but a caller may send several)."""
    batch: list[Row] = []
    for request, prompt_ids in encoded:
        for sample_index, seed in zip(request.sample_indices, request.seeds, strict=True):
            if batch and (len(batch) == batch_size or batch[0].request.sampling != request.sampling):
                yield batch
                batch = []
            batch.append(Row(request, prompt_ids, sample_index, seed))
    if batch:
        yield batch


def sample_packed(backend: Any, rows: list[Row]) -> Iterator[tuple[Row, tuple[str, int, str], float]]:
    """Decode `rows` together; yield (row, (text, tokens, reason), seconds) as each finishes."""
    torch = backend._torch
    device = backend.device
    sampling = rows[0].request.sampling
    started = time.perf_counter()
    width = max(len(row.prompt_ids) for row in rows)
    pad = backend.stop_ids[0]  # any id: padded positions are masked out
    input_ids = torch.tensor(
        [[pad] * (width - len(r.prompt_ids)) + r.prompt_ids for r in rows], device=device
    )
    mask = torch.tensor(
        [[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in rows], device=device
    )
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    generators = [torch.Generator(device=device).manual_seed(row.seed) for row in rows]
    tokens: list[list[int]] = [[] for _ in rows]
    live = list(range(len(rows)))
    stop_ids = set(backend.stop_ids)
    with torch.inference_mode():
        out = backend.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True)
    cache = out.past_key_values
    if len(rows) > 1 and not hasattr(cache, "batch_select_indices"):
        raise BackendError(
            "backend option pack_prompts needs a KV cache that can drop finished rows; this model's "
            "(remote code) cannot: leave pack_prompts off"
        )
    logits = out.logits[:, -1].float()
    next_position = positions[:, -1:] + 1
    for _step in range(sampling.max_new_tokens):
        with torch.inference_mode():
            next_ids = [backend._draw(logits[i], generators[row], sampling) for i, row in enumerate(live)]
        keep: list[int] = []
        for i, row in enumerate(live):
            tokens[row].append(next_ids[i])
            reason = backend._finished(tokens[row], stop_ids, sampling)
            if reason is None:
                keep.append(i)
            else:
                result = backend._result(tokens[row], stop_ids, sampling, reason)
                yield rows[row], result, time.perf_counter() - started
        if not keep:
            return
        with torch.inference_mode():
            if len(keep) < len(live):
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, next_position = mask[index], next_position[index]
                next_ids = [next_ids[i] for i in keep]
                live = [live[i] for i in keep]
            mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=1)
            out = backend.model(
                input_ids=torch.tensor(next_ids, device=device).unsqueeze(1),
                attention_mask=mask,
                position_ids=next_position,
                past_key_values=cache,
                use_cache=True,
            )
            cache = out.past_key_values
            logits = out.logits[:, -1].float()
            next_position = next_position + 1
