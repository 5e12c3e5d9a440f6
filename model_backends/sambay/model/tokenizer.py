"""Tokenizer, chat prompt and stop tokens for Phi-4-mini-flash-reasoning (sambay.md 6)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model_backends.sambay.errors import CheckpointError

# Stop tokens of the Phi-4-mini family. config.json's bos/eos (1/2) are config-class defaults and wrong.
STOP_TOKENS = ("<|end|>", "<|endoftext|>")


def load_tokenizer(path: str | Path) -> Any:
    """`transformers.AutoTokenizer` from a checkpoint folder (a PreTrainedTokenizerFast for Phi)."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    # AutoTokenizer peeks at config.json, whose model_type `phi4flash` transformers doesn't know (the
    # reason this engine exists); its warning about that says nothing about the tokenizer, so hide it.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot load a tokenizer from {path}: {err}") from err
    finally:
        hf_logging.set_verbosity(verbosity)


def render_chat(tokenizer: Any, messages: Sequence[dict]) -> str:
    """The checkpoint's chat template with a generation prompt, else the plain Phi format."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    parts = [f"<|{m['role']}|>{m['content']}<|end|>" for m in messages]
    return "".join(parts) + "<|assistant|>"


def stop_token_ids(path: str | Path | None, tokenizer: Any) -> list[int]:
    """eos ids of generation_config.json (when present) plus the ids of <|end|> and <|endoftext|>."""
    ids: list[int] = []
    gen_config = Path(path) / "generation_config.json" if path is not None else None
    if gen_config is not None and gen_config.is_file():
        eos = json.loads(gen_config.read_text()).get("eos_token_id")
        ids.extend([eos] if isinstance(eos, int) else list(eos or []))
    vocab = tokenizer.get_vocab()
    ids.extend(vocab[token] for token in STOP_TOKENS if token in vocab)
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise CheckpointError(f"no stop token found for {path}: need <|end|> or generation_config.json eos")
    return unique
