"""Request bodies in the OpenAI wire format -> a validated ServeRequest (or a 4xx ApiError).

Seeds: sample i of a request with `seed` S uses seed S + i (mod 2**63), so a client that sends one
request per sample with n=1 and the sample's own seed (the `openai` backend does) gets exactly the
samples the in-process backend draws for those seeds. Without `seed`, each sample gets a random seed.
Defaults are the model card's (evalkit.core.types.SamplingParams): temperature 0.6, top_p 0.95, and
`max_tokens` = SamplingParams().max_new_tokens capped by the room the prompt leaves in the context.
Which parameters are honoured, accepted or refused: params.py.
"""

from __future__ import annotations

import json
import math
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from evalkit.core.errors import EvalkitError
from evalkit.core.types import GenerationRequest, Message, SamplingParams
from evalkit.serve import params

Endpoint = Literal["chat", "completions"]
MAX_N = 128  # OpenAI's limit
MAX_STOP = 16
SEED_MOD = 2**63
TEMPERATURE_RANGE = (0.0, 2.0)  # OpenAI's range


class ApiError(Exception):
    """An error answered as `{"error": {"message", "type", "param", "code"}}` with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        type: str = "invalid_request_error",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.type = type
        self.param = param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ServedModel:
    """What the server knows about its model to validate requests (wired by the CLI from the backend)."""

    name: str
    aliases: tuple[str, ...] = ()  # other accepted names (e.g. the --model path as typed)
    max_context: int | None = None  # prompt + generated tokens one sample may use
    render_prompt: Callable[[Sequence[Message]], str] | None = None  # the chat template of the run path
    count_tokens: Callable[[str], int] | None = None  # None skips the prompt part of the context check
    created: int = 0
    fingerprint: str = "evalkit"

    def accepts(self, model: str) -> bool:
        return model == self.name or model in self.aliases


@dataclass(frozen=True)
class ServeRequest:
    endpoint: Endpoint
    generation: GenerationRequest
    stream: bool = False
    include_usage: bool = False


def _bad(message: str, param: str | None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, code, param=param)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON; send a finite number")


def parse_json(raw: bytes) -> Any:
    """JSON as the standard defines it: Python's NaN / Infinity / -Infinity literals are refused."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise ApiError(400, f"malformed JSON body: {err}", "invalid_json") from err


def _int(body: dict, key: str, default: int | None, low: int, high: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{key}' must be an integer, got {value!r}", key)
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"between {low} and {high}"
        raise _bad(f"'{key}' must be {span}, got {value}", key)
    return value


def _float(body: dict, key: str, default: float, low: float, high: float, low_open: bool = False) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"'{key}' must be a number, got {value!r}", key)
    value = float(value)
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        span = f"in ({low:g}, {high:g}]" if low_open else f"between {low:g} and {high:g}"
        raise _bad(f"'{key}' must be {span}, got {value}", key)
    return value


def _check_parameters(body: dict, endpoint: Endpoint) -> None:
    route = "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"
    for key, value in body.items():
        if key in params.SUPPORTED[endpoint] or key in params.HARMLESS[endpoint]:
            continue
        neutral = params.NEUTRAL[endpoint].get(key)
        if neutral is None:
            raise ApiError(400, f"unknown parameter '{key}' for {route}", "unknown_parameter", param=key)
        accepts, allowed = neutral
        if not accepts(value):
            raise ApiError(
                400,
                f"'{key}' is not supported by evalkit serve (only {allowed} is accepted), got {value!r}",
                "unsupported_parameter",
                param=key,
            )


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
        raise _bad(f"'stop' must be a non-empty string or a list of at most {MAX_STOP} of them", "stop")
    return tuple(stops)


def _content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"'{where}.content' must be a string or a list of text parts", f"{where}.content")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            raise _bad(
                f"'{where}.content[{j}]' is a {kind or 'malformed'!s} part; only text parts are supported",
                f"{where}.content[{j}]",
                "unsupported_content",
            )
        texts.append(part["text"])
    return "".join(texts)


def _messages(body: dict) -> tuple[Message, ...]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty list", "messages", "missing_messages")
    out = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _bad(f"'{where}' must be an object with a role and a content", where)
        role = params.ROLES.get(m.get("role"))  # developer is the newer name of system
        if role is None:
            raise _bad(
                f"'{where}.role' must be system, developer, user or assistant, got {m.get('role')!r} "
                "(tool and function turns are not supported)",
                f"{where}.role",
            )
        for key in m:
            if key not in params.MESSAGE_KEYS or (key == "refusal" and m[key] is not None):
                raise _bad(f"'{where}.{key}' is not supported by evalkit serve", f"{where}.{key}")
        if not isinstance(m.get("name", ""), str):
            raise _bad(f"'{where}.name' must be a string", f"{where}.name")
        out.append({"role": role, "content": _content(m.get("content"), where)})
    return tuple(out)


def _prompt(body: dict) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _bad(
            "'prompt' must be a string (token-id and multi-prompt lists are not supported)",
            "prompt",
            "bad_prompt",
        )
    if not prompt:
        raise _bad("'prompt' is empty", "prompt", "bad_prompt")
    return prompt


def _streaming(body: dict) -> tuple[bool, bool]:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad(f"'stream' must be true or false, got {stream!r}", "stream")
    options = body.get("stream_options")
    if options is None:
        return bool(stream), False
    if not stream:
        raise _bad("'stream_options' is only allowed with stream=true", "stream_options")
    if not isinstance(options, dict):
        raise _bad("'stream_options' must be an object", "stream_options")
    for key, value in options.items():
        if key not in params.STREAM_OPTION_KEYS:
            raise _bad(f"unknown stream option '{key}'", f"stream_options.{key}", "unknown_parameter")
        if not isinstance(value, bool):
            raise _bad(f"'stream_options.{key}' must be true or false", f"stream_options.{key}")
    return True, bool(options.get("include_usage", False))


def _prompt_tokens(model: ServedModel, messages: tuple[Message, ...], prompt: str | None) -> int | None:
    if model.count_tokens is None:
        return None
    if prompt is None:
        if model.render_prompt is None:
            return None
        try:
            prompt = model.render_prompt(messages)
        except EvalkitError as err:  # e.g. a tokenizer without a chat template
            raise ApiError(400, str(err), "no_chat_template", param="messages") from err
    return model.count_tokens(prompt)


def _max_tokens(body: dict, endpoint: Endpoint, model: ServedModel, prompt_tokens: int | None) -> int:
    keys = ["max_tokens"] + (["max_completion_tokens"] if endpoint == "chat" else [])
    given = {k: body[k] for k in keys if body.get(k) is not None}
    if len(set(map(repr, given.values()))) > 1:
        raise _bad("'max_tokens' and 'max_completion_tokens' differ; send one of them", "max_tokens")
    key = next(iter(given), "max_tokens")
    room = None
    if model.max_context is not None and prompt_tokens is not None:
        room = model.max_context - prompt_tokens
        if room < 1:
            raise _bad(
                f"the prompt has {prompt_tokens} tokens; the context holds {model.max_context}",
                "messages" if endpoint == "chat" else "prompt",
                "context_length_exceeded",
            )
    default = SamplingParams().max_new_tokens
    if room is not None:
        default = min(room, default)
    elif model.max_context is not None:
        default = min(model.max_context, default)
    value = _int(body, key, default, 1)
    assert value is not None
    limit = room if room is not None else model.max_context
    if limit is not None and value > limit:
        used = f" plus the prompt's {prompt_tokens} tokens" if prompt_tokens is not None else ""
        raise _bad(
            f"'{key}'={value}{used} exceeds the context of {model.max_context} tokens",
            key,
            "context_length_exceeded",
        )
    return value


def parse_request(body: Any, endpoint: Endpoint, model: ServedModel) -> ServeRequest:
    """Validate one request body; raise ApiError (4xx) for anything the engine must not see."""
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", None, "invalid_json")
    _check_parameters(body, endpoint)
    asked = body.get("model")
    if asked is not None and (not isinstance(asked, str) or not model.accepts(asked)):
        raise ApiError(
            404,
            f"the model {asked!r} does not exist here; this server has {model.name!r}",
            "model_not_found",
            param="model",
        )
    stream, include_usage = _streaming(body)
    n = _int(body, "n", 1, 1, MAX_N)
    seed = _int(body, "seed", None, -(2**63), 2**63 - 1)
    defaults = SamplingParams()
    temperature = _float(body, "temperature", defaults.temperature, *TEMPERATURE_RANGE)
    top_p = _float(body, "top_p", defaults.top_p, 0.0, 1.0, low_open=True)
    stop = _stop(body)
    messages: tuple[Message, ...] = ()
    prompt: str | None = None
    if endpoint == "chat":
        messages = _messages(body)
    else:
        prompt = _prompt(body)
    prompt_tokens = _prompt_tokens(model, messages, prompt)
    max_tokens = _max_tokens(body, endpoint, model, prompt_tokens)
    assert n is not None
    seeds = tuple((seed + i) % SEED_MOD if seed is not None else secrets.randbits(63) for i in range(n))
    generation = GenerationRequest(
        request_id=uuid.uuid4().hex,
        messages=messages,
        sample_indices=tuple(range(n)),
        seeds=seeds,
        sampling=SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_tokens, stop=stop),
        prompt_text=prompt,
    )
    return ServeRequest(endpoint, generation, stream, include_usage)
