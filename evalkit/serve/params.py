"""Which OpenAI request parameters `evalkit serve` honours, which it accepts because they change nothing
here, and which it refuses (400 naming the parameter) because honouring them silently would be a lie.

The lists follow the OpenAI API reference for POST /v1/chat/completions and POST /v1/completions.
A parameter the API does not define is refused as unknown (as OpenAI itself does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Honoured: parsed and validated in protocol.py.
SUPPORTED = {
    "chat": {"model", "messages", "n", "seed", "stop", "stream", "stream_options", "temperature", "top_p",
             "max_tokens", "max_completion_tokens"},
    "completions": {"model", "prompt", "n", "seed", "stop", "stream", "stream_options", "temperature",
                    "top_p", "max_tokens"},
}  # fmt: skip

# Accepted whatever their value: they describe the caller or OpenAI's own service, not the generation.
HARMLESS = {
    "chat": {"user", "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier",
             "parallel_tool_calls"},
    "completions": {"user"},
}  # fmt: skip


def _is_none(value: Any) -> bool:
    return value is None


def _zero(value: Any) -> bool:
    return value is None or (type(value) in (int, float) and value == 0)


def _false(value: Any) -> bool:
    return value is None or value is False


# Parameters that change the output: accepted only at the value that asks for nothing (their default),
# refused otherwise. name -> (test of the neutral value, what to say the neutral value is).
Neutral = tuple[Callable[[Any], bool], str]
_COMMON: dict[str, Neutral] = {
    "frequency_penalty": (_zero, "0"),
    "presence_penalty": (_zero, "0"),
    "logit_bias": (lambda v: v is None or v == {}, "null or {}"),
}
NEUTRAL: dict[str, dict[str, Neutral]] = {
    "chat": {
        **_COMMON,
        "logprobs": (_false, "false"),
        "top_logprobs": (lambda v: v is None or (type(v) is int and v == 0), "0"),
        "tools": (lambda v: v is None or v == [], "null or []"),
        "tool_choice": (lambda v: v is None or v == "none", '"none"'),
        "functions": (lambda v: v is None or v == [], "null or []"),
        "function_call": (lambda v: v is None or v == "none", '"none"'),
        "response_format": (lambda v: v is None or v == {"type": "text"}, '{"type": "text"}'),
        "modalities": (lambda v: v is None or v == ["text"], '["text"]'),
        "audio": (_is_none, "null"),
        "prediction": (_is_none, "null"),
        "web_search_options": (_is_none, "null"),
        "reasoning_effort": (_is_none, "null"),
        "verbosity": (_is_none, "null"),
    },
    "completions": {
        **_COMMON,
        "logprobs": (_is_none, "null"),
        "echo": (_false, "false"),
        "best_of": (lambda v: v is None or (type(v) is int and v == 1), "1"),
        "suffix": (lambda v: v is None or v == "", 'null or ""'),
    },
}

MESSAGE_KEYS = {"role", "content", "name", "refusal"}  # refusal: echoed assistant turns carry null
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
STREAM_OPTION_KEYS = {"include_usage", "include_obfuscation"}  # obfuscation: nothing to pad here
