"""The same-size transformer baseline: transformers' Phi3ForCausalLM with the Phi-4-mini configuration
(sambay.md 5.4; random weights), decoded by `generate` with a static KV cache, as a user would run it.

`generate` batches statically: a batch runs until its longest sample is done, and its KV cache is
allocated for prompt + max_new_tokens per row, so the largest batch that fits is set by memory.
"""

from __future__ import annotations

import time

import torch

from benchmarks.engine_bench import sync

# Phi-4-mini(-reasoning): 32 layers, hidden 3072, 24 heads / 8 KV heads of 128, SwiGLU 8192, LongRoPE over
# 3/4 of each head (48 frequency pairs), tied embeddings, vocab 200,064. Factors of 1.0: random weights
# make the values irrelevant to speed, only the shapes and the code path matter.
PHI4_MINI = dict(
    vocab_size=200064,
    hidden_size=3072,
    intermediate_size=8192,
    num_hidden_layers=32,
    num_attention_heads=24,
    num_key_value_heads=8,
    max_position_embeddings=131072,
    original_max_position_embeddings=4096,
    partial_rotary_factor=0.75,
    rope_pairs=48,
    rms_norm_eps=1e-5,
)
# Small stand-ins sized like the small SambaY configs, for CPU runs of the benchmark itself.
SMALL = dict(
    vocab_size=4096,
    hidden_size=256,
    intermediate_size=704,
    num_hidden_layers=8,
    num_attention_heads=8,
    num_key_value_heads=2,
    max_position_embeddings=16384,
    original_max_position_embeddings=4096,
    partial_rotary_factor=0.75,
    rope_pairs=12,
    rms_norm_eps=1e-5,
)
TINY = dict(SMALL, vocab_size=512, hidden_size=32, intermediate_size=96, num_attention_heads=4, rope_pairs=3)
CONFIGS = {"published": PHI4_MINI, "small": SMALL, "tiny": TINY}


def phi3_config(name: str):
    from transformers import Phi3Config

    spec = dict(CONFIGS[name])
    pairs = spec.pop("rope_pairs")
    return Phi3Config(
        **spec,
        rope_scaling={
            "type": "longrope",
            "long_factor": [1.0] * pairs,
            "short_factor": [1.0] * pairs,
            "factor": spec["max_position_embeddings"] / spec["original_max_position_embeddings"],
        },
        tie_word_embeddings=True,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )


def build_phi3(name: str, dtype: torch.dtype, device: str, seed: int = 0) -> torch.nn.Module:
    from transformers import Phi3ForCausalLM

    torch.manual_seed(seed)
    with torch.device(device):
        model = Phi3ForCausalLM(phi3_config(name)).to(dtype)
    return model.eval()


def kv_bytes_per_token(config, itemsize: int = 2) -> int:
    head_dim = config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim * itemsize


def largest_batch(
    model: torch.nn.Module, tokens_per_row: int, cap: int, device: str, prefill_chunk: int | None = None
) -> int:
    """Rows of `tokens_per_row` static cache that fit in 90% of free CUDA memory (CPU: `cap`).

    Besides its cache, a row needs transient room that grows with it: with a static cache's mask, SDPA
    expands one layer's K and V to every query head over the whole cache (repeat_kv), and a prefill chunk
    (`prefill_chunk` tokens, else the whole context) holds its activations and its [chunk, cache] mask.
    4 GiB more go to the logits and the allocator's slack."""
    if not device.startswith("cuda"):
        return cap
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    config = model.config
    itemsize = torch.empty((), dtype=model.dtype).element_size()
    head_dim = config.hidden_size // config.num_attention_heads
    chunk = min(prefill_chunk or tokens_per_row, tokens_per_row)
    expanded_kv = 2 * config.num_attention_heads * head_dim * tokens_per_row * itemsize
    activations = (
        chunk * (4 * config.hidden_size + 3 * config.intermediate_size) * itemsize + chunk * tokens_per_row
    )
    per_row = kv_bytes_per_token(config, itemsize) * tokens_per_row + expanded_kv + activations
    return max(1, min(cap, int((0.9 * free - 4 * 2**30) // per_row)))


def generate_options() -> set[str]:
    """Which of generate's options the baseline uses this transformers has (both since 4.5x): without
    `disable_compile` its default compile stays on, without `prefill_chunk_size` prompts go in whole."""
    from transformers import GenerationConfig

    config = GenerationConfig()
    return {name for name in ("disable_compile", "prefill_chunk_size") if hasattr(config, name)}


class _StepClock:
    """A `generate` streamer that timestamps every put(): the prompt once, then one call per step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, _value) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


class _StopAfter:
    """Stopping criterion: end `generate` after `steps` new tokens, whatever max_new_tokens says."""

    def __init__(self, steps: int) -> None:
        self.steps, self.calls = steps, 0

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        self.calls += 1
        return torch.full(
            (input_ids.shape[0],), self.calls >= self.steps, dtype=torch.bool, device=input_ids.device
        )


def _options(compile: bool, prefill_chunk: int | None) -> dict:
    have = generate_options()
    options = {"disable_compile": not compile} if "disable_compile" in have else {}
    if prefill_chunk and "prefill_chunk_size" in have:
        options["prefill_chunk_size"] = prefill_chunk
    return options


@torch.inference_mode()
def generate_timed(
    model,
    batch: int,
    prompt_len: int,
    cache_tokens: int,
    steps: int,
    device: str,
    seed: int = 0,
    compile: bool = False,
    prefill_chunk: int | None = None,
) -> dict:
    """Time one `generate` call as a workload would make it: sampling at T 0.6 / top-p 0.95, a static
    cache of `cache_tokens` per row (prompt + the workload's max_new_tokens: HF's static cache attends over
    its whole length, so the cache size, not only the context, sets the step cost), stopped after `steps`
    tokens. Returns wall seconds, prefill seconds and the seconds of every decode step.

    `compile`: on CUDA, `generate` compiles the decode step of a static cache by default (torch.compile,
    CUDA graphs), which costs a minute or more per shape; off, the step runs eagerly. `prefill_chunk`:
    prefill that many tokens per forward (`prefill_chunk_size`), so a long prompt at a large batch does not
    need activations for all of its tokens at once."""
    from transformers import StoppingCriteriaList

    if not 0 < prompt_len < cache_tokens:
        raise ValueError(f"prompt_len {prompt_len} must be in 1..{cache_tokens - 1}")
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, model.config.vocab_size, (batch, prompt_len), generator=gen).to(device)
    clock = _StepClock()
    sync(device)
    start = time.perf_counter()
    model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        do_sample=True,
        temperature=0.6,
        top_p=0.95,
        max_new_tokens=cache_tokens - prompt_len,
        eos_token_id=None,
        pad_token_id=0,
        cache_implementation="static",
        **_options(compile, prefill_chunk),
        streamer=clock,
        stopping_criteria=StoppingCriteriaList([_StopAfter(steps)]),
    )
    sync(device)
    end = time.perf_counter()
    # put() #0 is the prompt, #1 the first token (sampled from the prefill), #k the k-th decode step.
    marks = clock.times
    return {
        "seconds": end - start,
        "prefill_seconds": marks[1] - start if len(marks) > 1 else end - start,
        "step_seconds": [b - a for a, b in zip(marks[1:-1], marks[2:], strict=True)],
    }
