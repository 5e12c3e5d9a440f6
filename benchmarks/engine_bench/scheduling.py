"""Scheduling alone: evalkit's continuous batching + one forked prefill per problem against static
batches of the same model (what `transformers.generate` does: batches of --slots samples in arrival
order, each prefilled separately, decoded until its longest member finishes). Both use the same model
calls and the same on-device sampler, so the ratio measures scheduling only."""

from __future__ import annotations

import time

import torch

from benchmarks.engine_bench import sync
from model_backends.sambay.engine import EngineConfig, LLMEngine, Request, SamplingParams
from model_backends.sambay.engine.sampler import sample


def run_continuous(model, w, slots: int, device: str) -> dict:
    work = list(zip(w.prompts, w.lengths, w.seeds, strict=True))
    sampling = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=max(map(max, w.lengths)))
    longest = w.longest
    engine = LLMEngine(model, EngineConfig(max_slots=slots, max_seq_len=longest, ignore_stop_tokens=True))
    for i, (prompt, lengths, seeds) in enumerate(work):
        request = Request(f"p{i}", tuple(range(len(seeds))), tuple(seeds), sampling)
        engine.add_request(request, prompt, max_new_tokens=lengths)
    sync(device)
    start = time.perf_counter()
    tokens = 0
    while engine.has_work():
        tokens += sum(seq.num_generated_tokens for seq in engine.step())
    sync(device)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "generated_tokens": tokens,
        "tokens_per_second": tokens / seconds,
        "steps": engine.stats.steps,
        "prefills": engine.stats.prefills,
        "slots": engine.runner.num_slots,
        "state_pool_mib": engine.runner.pool.nbytes() / 2**20,
    }


def run_static(model, w, slots: int, device: str) -> dict:
    work = list(zip(w.prompts, w.lengths, w.seeds, strict=True))
    samples = [
        (prompt, length, seed)
        for prompt, lengths, seeds in work
        for length, seed in zip(lengths, seeds, strict=True)
    ]
    pool = model.new_state_pool(slots, w.longest)
    model_device = model.device
    sync(device)
    start = time.perf_counter()
    steps = prefills = 0
    with torch.inference_mode():
        for first in range(0, len(samples), slots):
            batch = samples[first : first + slots]
            slot_ids = torch.arange(len(batch), device=model_device)
            logits = torch.cat(
                [
                    model.prefill([torch.tensor(p, device=model_device)], slot_ids[i : i + 1], pool)
                    for i, (p, _, _) in enumerate(batch)
                ]
            )
            prefills += len(batch)
            temperature = torch.full((len(batch),), 0.6, device=model_device)
            top_p = torch.full((len(batch),), 0.95, device=model_device)
            seeds = torch.tensor([s for _, _, s in batch], device=model_device)
            for step in range(max(length for _, length, _ in batch)):
                tokens = sample(
                    logits, temperature, top_p, seeds, torch.full((len(batch),), step, device=model_device)
                )
                if step + 1 < max(length for _, length, _ in batch):
                    logits = model.decode(tokens, slot_ids, pool)
                    steps += 1
                tokens.tolist()  # the host learns the tokens every step, as generate() does to check eos
    sync(device)
    seconds = time.perf_counter() - start
    useful = sum(length for _, length, _ in samples)
    return {
        "seconds": seconds,
        "generated_tokens": useful,
        "tokens_per_second": useful / seconds,
        "steps": steps,
        "prefills": prefills,
        "slots": slots,
    }
