"""Response bodies in the OpenAI wire format: whole responses, SSE stream chunks, model entries.

Streaming (see app.py for when each is sent): per choice, a first chunk at once (chat: the assistant
role with empty content), then the choice's text in one chunk when its sample finishes, then a chunk
with an empty delta and the finish_reason; after every choice `data: [DONE]`. With
`stream_options.include_usage`, every chunk carries `"usage": null` and one last chunk before [DONE] has
no choices and the usage of the whole request, as OpenAI does.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from evalkit.core.types import Completion
from evalkit.serve.protocol import Endpoint, ServedModel

DONE = b"data: [DONE]\n\n"
PING = b": keep-alive\n\n"  # an SSE comment: clients ignore it; it keeps idle proxies from closing


def model_entry(model: ServedModel) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": model.name,
        "object": "model",
        "created": model.created,
        "owned_by": "evalkit",
    }
    if model.max_context is not None:
        entry["max_model_len"] = model.max_context
    return entry


def usage(completions: list[Completion]) -> dict[str, int]:
    prompt = completions[0].num_prompt_tokens if completions else 0
    generated = sum(c.num_generated_tokens for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}


def response_id(endpoint: Endpoint) -> str:
    return ("chatcmpl-" if endpoint == "chat" else "cmpl-") + uuid.uuid4().hex


def build_response(endpoint: Endpoint, model: ServedModel, completions: list[Completion]) -> dict:
    """The whole (non-streaming) response; `completions` sorted by sample index = choice index."""
    choices = []
    for index, c in enumerate(completions):
        choice: dict[str, Any] = {"index": index, "finish_reason": c.finish_reason, "logprobs": None}
        if endpoint == "chat":
            choice["message"] = {"role": "assistant", "content": c.text, "refusal": None}
        else:
            choice["text"] = c.text
        choices.append(choice)
    return {
        "id": response_id(endpoint),
        "object": "chat.completion" if endpoint == "chat" else "text_completion",
        "created": int(time.time()),
        "model": model.name,
        "system_fingerprint": model.fingerprint,
        "choices": choices,
        "usage": usage(completions),
    }


class ChunkWriter:
    """The SSE events of one streamed response (all chunks share one id and creation time)."""

    def __init__(self, endpoint: Endpoint, model: ServedModel, include_usage: bool) -> None:
        self.endpoint = endpoint
        self.model = model
        self.include_usage = include_usage
        self.id = response_id(endpoint)
        self.created = int(time.time())

    def _event(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk" if self.endpoint == "chat" else "text_completion",
            "created": self.created,
            "model": self.model.name,
            "system_fingerprint": self.model.fingerprint,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        chunk.update(extra)
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    def _choice(self, index: int, text: str | None, finish_reason: str | None, role: bool = False) -> dict:
        if self.endpoint == "chat":
            delta: dict[str, Any] = {}
            if role:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish_reason}

    def opening(self, index: int) -> bytes:
        """The chat role chunk of one choice (the completions API has none)."""
        return self._event([self._choice(index, "", None, role=True)])

    def text(self, index: int, text: str) -> bytes:
        return self._event([self._choice(index, text, None)])

    def finish(self, index: int, finish_reason: str) -> bytes:
        return self._event([self._choice(index, None, finish_reason)])

    def usage(self, completions: list[Completion]) -> bytes:
        return self._event([], usage=usage(completions))


def error_event(message: str, code: str, type: str = "server_error") -> bytes:
    """An error after the stream began (the status is already 200): the OpenAI SDK raises it."""
    payload = {"error": {"message": message, "type": type, "param": None, "code": code}}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
