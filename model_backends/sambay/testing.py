"""Tiny SambaY checkpoints for tests and the demo, in the real Hugging Face layout."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import torch

SPECIAL_TOKENS = ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>", "<|system|>"]

# Phi-style chat template: each turn as <|role|>content<|end|>, then <|assistant|> to generate.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% else %}{{ eos_token }}{% endif %}"
)

_CORPUS_WORDS = (
    "zero one two three four five six seven eight nine ten hundred thousand plus minus times divided by "
    "equals sum difference product quotient answer number numbers integer fraction prime square root "
    "solve find compute let be the of and is a an if then so therefore step reason final boxed total "
    "value equation variable x y z triangle circle area angle degree probability remainder modulo "
    "what how many think first next because we get check"
)


def _corpus() -> list[str]:
    lines = [_CORPUS_WORDS]
    for a in range(0, 40):
        b = (a * 7 + 3) % 50
        lines.append(f"{a} + {b} = {a + b}. {a} * {b} = {a * b}. {b} - {a} = {b - a}.")
        lines.append(f"What is {a} plus {b}? The answer is \\boxed{{{a + b}}}.")
    lines.append("Please reason step by step, and put your final answer within \\boxed{}.")
    return lines


@functools.lru_cache(maxsize=4)
def _trained_tokenizer_json(vocab_size: int) -> str:
    """Train once per process (about a second); every tiny checkpoint reuses the result."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(_corpus(), trainer=trainer)
    return raw.to_str()


def make_tiny_tokenizer(dir: str | Path, vocab_size: int = 512) -> Any:
    """A small byte-level BPE with the Phi special tokens (ids 0..4, <|endoftext|> = 0) and a Phi chat
    template, saved to `dir` (tokenizer.json, tokenizer_config.json, chat template)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_trained_tokenizer_json(vocab_size)),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(dir))
    return tokenizer


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """An 8-layer config.json dict with every layer type; window 8 so short prompts cross it."""
    config = {
        "architectures": ["Phi4FlashForCausalLM"],
        "model_type": "phi4flash",
        "vocab_size": 512,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 8,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "sliding_window": 8,
        "layer_norm_eps": 1e-5,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "mamba_d_state": 4,
        "mamba_d_conv": 4,
        "mamba_expand": 2,
        "mamba_dt_rank": "auto",
        "pad_token_id": 0,
        "bos_token_id": 1,  # deliberately the published (wrong) values: stop tokens must not come from here
        "eos_token_id": 2,
    }
    config.update(overrides)
    return config


def random_state_dict(config_dict: dict[str, Any], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random fp32 weights under the published tensor names, scaled so activations stay O(1) and every
    path (window, lambda, memory, SSM decay) visibly changes the logits."""
    from model_backends.sambay.model import SambaYForCausalLM
    from model_backends.sambay.model.config import SambaYConfig

    config = SambaYConfig.from_dict(config_dict)
    gen = torch.Generator().manual_seed(seed)
    model = SambaYForCausalLM(config, device="meta")
    out = {}
    for name, param in model.state_dict().items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        out[name] = _init_tensor(name, tuple(param.shape), config, gen)
    return out


def _init_tensor(name: str, shape: tuple[int, ...], config: Any, gen: torch.Generator) -> torch.Tensor:
    """One tensor of the random scheme, fp32, drawn on the generator's device."""
    device = gen.device

    def randn(scale: float) -> torch.Tensor:
        return torch.randn(shape, generator=gen, device=device) * scale

    if name.endswith("A_log"):  # S4D-real init: A = -(1..N), plus jitter
        n = torch.arange(1, shape[1] + 1, dtype=torch.float32, device=device).log()
        return n.expand(shape).clone() + randn(0.1)
    if name.endswith(".D"):
        return 1.0 + randn(0.1)
    if name.endswith("dt_proj.bias"):  # inverse softplus of dt in [0.01, 0.5]
        u = torch.rand(shape, generator=gen, device=device)
        dt = torch.exp(u * (math.log(0.5) - math.log(0.01)) + math.log(0.01))
        return dt + torch.log(-torch.expm1(-dt))
    if "lambda_" in name:
        return randn(0.1)
    if "layernorm" in name or "subln" in name:
        return (1.0 + randn(0.1)) if name.endswith("weight") else randn(0.1)
    if name.endswith("embed_tokens.weight"):
        return randn(1.0)
    if name.endswith("conv1d.weight"):
        return randn(1.0 / math.sqrt(shape[-1]))
    if name.endswith("bias"):
        return randn(0.1)
    return randn(1.0 / math.sqrt(shape[-1]))  # Linear weight [out, in]


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """The `random_state_dict` scheme drawn in place on the model's own device: full-size models on a
    GPU (benchmarks, full-size kernel tests) without a 15 GB CPU detour."""
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    for name, param in model.named_parameters():  # the tied LM head is the embedding: drawn once
        param.copy_(_init_tensor(name, tuple(param.shape), model.config, gen))
    return model


def make_tiny_checkpoint(dir: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """Write config.json, model.safetensors (lm_head not stored), generation_config.json and tokenizer
    files into `dir`; return the folder."""
    from safetensors.torch import save_file

    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tiny_tokenizer(dir)
    config = tiny_config(**overrides)
    if config["vocab_size"] < len(tokenizer):
        raise ValueError(f"tiny vocab_size {config['vocab_size']} < tokenizer size {len(tokenizer)}")
    (dir / "config.json").write_text(json.dumps(config, indent=2))
    vocab = tokenizer.get_vocab()
    generation = {
        "bos_token_id": vocab["<|endoftext|>"],
        "eos_token_id": [vocab["<|end|>"], vocab["<|endoftext|>"]],
        "pad_token_id": vocab["<|endoftext|>"],
    }
    (dir / "generation_config.json").write_text(json.dumps(generation, indent=2))
    weights = {k: v.contiguous() for k, v in random_state_dict(config, seed).items()}
    save_file(weights, str(dir / "model.safetensors"), metadata={"format": "pt"})
    return dir
