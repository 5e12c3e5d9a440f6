"""The OpenAI wire format: request bodies -> GenerationRequest (validated), Completions -> responses.

Seeds: sample i of a request with `seed` S uses seed S + i (mod 2**63), so a client that sends one
request per sample with n=1 and the sample's own seed (the `openai` backend does) gets exactly the
samples the in-process backend draws for those seeds. Without `seed`, each sample gets a random seed.
`max_tokens` defaults to the room left in the context (capped at DEFAULT_MAX_TOKENS).
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from evalkit.core.types import Completion, GenerationRequest, SamplingParams

Endpoint = Literal["chat", "completions"]
MAX_N = 256
MAX_STOP = 16
DEFAULT_MAX_TOKENS = 4096
SEED_MOD = 2**63


class ApiError(Exception):
    """An error answered as `{"error": {"message", "type", "code"}}` with an HTTP status."""

    def __init__(self, status: int, message: str, code: str, type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.type = type

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code}}


@dataclass(frozen=True)
class ServedModel:
    """What the server knows about its model to validate requests."""

    name: str
    aliases: tuple[str, ...] = ()  # other accepted names (e.g. the --model path as typed)
    max_context: int | None = None
    tokenizer: Any = None  # to count prompt tokens; None skips the context check's prompt part

    def accepts(self, model: str) -> bool:
        return model == self.name or model in self.aliases


def _bad(message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, code)


def _int(body: dict, key: str, default: int | None, low: int, high: int | None = None) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{key}' must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"between {low} and {high}"
        raise _bad(f"'{key}' must be {span}, got {value}")
    return value


def _float(body: dict, key: str, default: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"'{key}' must be a number, got {value!r}")
    return float(value)


def _stop(body: dict) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if (
        not isinstance(stops, list)
        or not all(isinstance(s, str) and s for s in stops)
        or len(stops) > MAX_STOP
    ):
        raise _bad(f"'stop' must be a non-empty string or a list of at most {MAX_STOP} of them")
    return tuple(stops)


def _messages(body: dict) -> tuple[dict[str, str], ...]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty list", "missing_messages")
    out = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise _bad("each message needs a role of system, user or assistant")
        content = m.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(
                p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
            )
        if not isinstance(content, str):
            raise _bad("each message's content must be a string or a list of text parts")
        out.append({"role": m["role"], "content": content})
    return tuple(out)


def _prompt(body: dict) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _bad(
            "'prompt' must be a string (token-id and multi-prompt lists are not supported)", "bad_prompt"
        )
    return prompt


def _count_prompt_tokens(model: ServedModel, endpoint: Endpoint, messages: tuple, prompt: str | None) -> int:
    from model_backends.chat import encode_prompt, render_messages

    text = prompt if prompt is not None else render_messages(model.tokenizer, messages)
    return len(encode_prompt(model.tokenizer, text))


def parse_request(body: Any, endpoint: Endpoint, model: ServedModel) -> GenerationRequest:
    """Validate one request body; raise ApiError (4xx) for anything the engine must not see."""
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", "invalid_json")
    asked = body.get("model")
    if asked is not None and (not isinstance(asked, str) or not model.accepts(asked)):
        raise ApiError(
            404, f"model {asked!r} is not served here; this server has {model.name!r}", "model_not_found"
        )
    if body.get("stream"):
        raise _bad("streaming is not supported by evalkit serve; send stream=false", "stream_unsupported")
    n = _int(body, "n", 1, 1, MAX_N)
    seed = _int(body, "seed", None, -(2**63))
    temperature = _float(body, "temperature", 1.0)
    top_p = _float(body, "top_p", 1.0)
    if temperature < 0 or not 0 < top_p <= 1:
        raise _bad("temperature must be >= 0 and top_p in (0, 1]")
    messages: tuple = ()
    prompt: str | None = None
    if endpoint == "chat":
        messages = _messages(body)
    else:
        prompt = _prompt(body)
    prompt_tokens = 0
    if model.tokenizer is not None:
        prompt_tokens = _count_prompt_tokens(model, endpoint, messages, prompt)
    room = None if model.max_context is None else model.max_context - prompt_tokens
    if room is not None and room < 1:
        raise _bad(
            f"the prompt has {prompt_tokens} tokens; the context holds {model.max_context}",
            "context_length_exceeded",
        )
    key = "max_completion_tokens" if endpoint == "chat" and "max_completion_tokens" in body else "max_tokens"
    default = DEFAULT_MAX_TOKENS if room is None else min(room, DEFAULT_MAX_TOKENS)
    max_tokens = _int(body, key, default, 1)
    if room is not None and max_tokens > room:
        raise _bad(
            f"{key}={max_tokens} plus the prompt's {prompt_tokens} tokens exceeds the context of {model.max_context}",
            "context_length_exceeded",
        )
    seeds = tuple((seed + i) % SEED_MOD if seed is not None else secrets.randbits(63) for i in range(n))
    return GenerationRequest(
        request_id=uuid.uuid4().hex,
        messages=messages,
        sample_indices=tuple(range(n)),
        seeds=seeds,
        sampling=SamplingParams(
            temperature=temperature, top_p=top_p, max_new_tokens=max_tokens, stop=_stop(body)
        ),
        prompt_text=prompt,
    )


def build_response(
    endpoint: Endpoint, model_name: str, completions: list[Completion], fingerprint: str
) -> dict:
    choices = []
    for index, c in enumerate(completions):
        choice: dict[str, Any] = {"index": index, "finish_reason": c.finish_reason, "logprobs": None}
        if endpoint == "chat":
            choice["message"] = {"role": "assistant", "content": c.text}
        else:
            choice["text"] = c.text
        choices.append(choice)
    prompt_tokens = completions[0].num_prompt_tokens if completions else 0
    generated = sum(c.num_generated_tokens for c in completions)
    return {
        "id": ("chatcmpl-" if endpoint == "chat" else "cmpl-") + uuid.uuid4().hex,
        "object": "chat.completion" if endpoint == "chat" else "text_completion",
        "created": int(time.time()),
        "model": model_name,
        "system_fingerprint": fingerprint,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": generated,
            "total_tokens": prompt_tokens + generated,
        },
    }
