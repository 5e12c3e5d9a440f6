"""Shared by the adapters (hf, vllm) and `evalkit serve`: turn a request into prompt text with the
tokenizer's chat template, and cut generated text at the first stop string."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.core.errors import BackendError
from evalkit.core.types import GenerationRequest, Message


def render_messages(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The tokenizer's chat template with the generation prompt appended (the assistant turn to fill)."""
    if not getattr(tokenizer, "chat_template", None):
        raise BackendError(
            "the tokenizer has no chat template; send a pre-rendered prompt (prompt_text / the completions API)"
        )
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def render_prompt(tokenizer: Any, request: GenerationRequest) -> str:
    """`request.prompt_text` when set (the caller rendered it), else the chat template of its messages."""
    if request.prompt_text is not None:
        return request.prompt_text
    return render_messages(tokenizer, request.messages)


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of an already rendered prompt: no extra BOS, because chat templates write their own."""
    return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def prompt_tokens_sha256(token_ids: Sequence[int]) -> str:
    """sha256 (hex) of a prompt's token ids: names the exact model input (chat template applied) in a
    completion's `extra` without storing the prompt, which a private task (GPQA) must never do."""
    return hashlib.sha256(",".join(str(int(i)) for i in token_ids).encode()).hexdigest()


@dataclass(frozen=True)
class StopMatch:
    text: str  # the text before the first stop string (the stop string itself is not kept, as in OpenAI)
    stopped: bool


def cut_at_stop(text: str, stops: Sequence[str]) -> StopMatch:
    """Cut `text` at the earliest occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    if cut < 0:
        return StopMatch(text, False)
    return StopMatch(text[:cut], True)


def eos_token_ids(tokenizer: Any, generation_config: Any = None) -> list[int]:
    """The model's own stop tokens: generation_config's eos ids (one or a list) plus the tokenizer's eos."""
    ids: list[int] = []
    eos = getattr(generation_config, "eos_token_id", None)
    if isinstance(eos, int):
        ids.append(eos)
    elif eos:
        ids.extend(int(i) for i in eos)
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.append(int(tokenizer.eos_token_id))
    return list(dict.fromkeys(ids))
