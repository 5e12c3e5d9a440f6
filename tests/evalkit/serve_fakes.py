"""Deterministic in-process backends and a server fixture for the `evalkit serve` tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from evalkit.core.errors import BackendError
from evalkit.core.types import Completion, GenerationRequest, SamplingParams
from evalkit.serve.app import ServeSettings, create_app
from evalkit.serve.protocol import ServedModel
from evalkit.serve.server import BackgroundServer
from evalkit.serve.service import GenerationService

CONTEXT = 64


def render(messages) -> str:
    """A chat template of `role: content` lines (the fake of backend.render_prompt)."""
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


def count_words(text: str) -> int:
    return len(text.split())


def served_model(**overrides) -> ServedModel:
    fields = dict(
        name="tiny",
        aliases=("/models/tiny",),
        max_context=CONTEXT,
        render_prompt=render,
        count_tokens=count_words,
        fingerprint="evalkit-test",
    )
    return ServedModel(**{**fields, **overrides})


def fake_text(request: GenerationRequest, seed: int) -> str:
    """What the fake backends 'generate': a pure function of (prompt, seed, max tokens)."""
    prompt = request.prompt_text if request.prompt_text is not None else render(request.messages)
    words = [f"w{(seed * 31 + i + len(prompt)) % 97}" for i in range(request.sampling.max_new_tokens)]
    text = " ".join(words)
    for stop in request.sampling.stop:
        if stop in text:
            return text[: text.index(stop)]
    return text


def fake_completion(request: GenerationRequest, k: int) -> Completion:
    seed = request.seeds[k]
    text = fake_text(request, seed)
    stopped = len(text.split()) < request.sampling.max_new_tokens
    return Completion(
        request.request_id,
        request.sample_indices[k],
        text,
        num_prompt_tokens=3,
        num_generated_tokens=len(text.split()),
        finish_reason="stop" if stopped else "length",
        extra={"seed": seed},
    )


def sampling(max_new_tokens: int, stop: tuple[str, ...] = ()) -> SamplingParams:
    return SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens, stop=stop)


class PullBackend:
    """Pulls one request at a time, like the hf backend."""

    name = "pull-fake"

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        for request in requests:
            for k in reversed(range(request.n)):  # out of order on purpose
                yield fake_completion(request, k)

    def model_info(self) -> dict:
        return {"backend": self.name}


class PushBackend:
    """A stepping engine with a slot pool: one sample per slot, one token per step; a sample finishes
    after as many steps as its text has words (at least one). `step_seconds` slows each step down so a
    long request stays running while a test disconnects; `abort` drops one request (like the engine's)."""

    name = "push-fake"

    def __init__(self, slots: int = 8, step_seconds: float = 0.0, with_abort: bool = True) -> None:
        self.free = list(range(slots))
        self.num_slots = slots
        self.engine = self  # GenerationService.slot_usage() reads backend.engine.scheduler
        self.scheduler = self
        self.step_seconds = step_seconds
        self.waiting: list[tuple[GenerationRequest, int]] = []
        self.running: list[list] = []  # [request, k, slot, steps left]
        self.lock = threading.Lock()
        self.max_batch = 0
        self.steps = 0
        self.aborted: dict[str, int] = {}  # request id -> self.steps when abort() ran
        self.seen: list[GenerationRequest] = []
        if not with_abort:
            self.abort = None  # type: ignore[assignment]

    def add_request(self, request: GenerationRequest) -> None:
        if request.messages and request.messages[-1]["content"] == "refuse me":
            raise BackendError("refused by the engine")
        with self.lock:
            self.seen.append(request)
            self.waiting.extend((request, k) for k in range(request.n))

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def abort(self, request_id: str) -> None:
        with self.lock:
            self.aborted[request_id] = self.steps
            self.waiting = [(r, k) for r, k in self.waiting if r.request_id != request_id]
            for entry in [e for e in self.running if e[0].request_id == request_id]:
                self.running.remove(entry)
                self.free.append(entry[2])

    def step(self) -> list[Completion]:
        with self.lock:
            while self.waiting and self.free:
                request, k = self.waiting.pop(0)
                words = len(fake_text(request, request.seeds[k]).split())
                self.running.append([request, k, self.free.pop(), max(words, 1)])
            self.max_batch = max(self.max_batch, len(self.running))
            self.steps += 1
            done = []
            for entry in self.running:
                entry[3] -= 1
                if entry[3] == 0:
                    done.append(entry)
            for entry in done:
                self.running.remove(entry)
                self.free.append(entry[2])
        if self.step_seconds:
            time.sleep(self.step_seconds)
        return [fake_completion(request, k) for request, k, _, _ in done]

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        raise AssertionError("the service must drive a push backend through add_request/step")

    def model_info(self) -> dict:
        return {"backend": self.name}


@contextmanager
def serving(backend, settings: ServeSettings = ServeSettings(request_timeout=60), **kwargs):
    """(base url, service) of the app on `backend` under uvicorn in a thread."""
    service = GenerationService(backend)
    app = create_app(service, served_model(**kwargs.pop("model", {})), settings)
    try:
        with BackgroundServer(app, **kwargs) as server:
            yield server.url, service
    finally:
        service.close()
