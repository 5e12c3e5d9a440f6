"""evalkit serve on deterministic in-process backends: status codes, wire format, seeds, concurrency."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from evalkit.core.errors import BackendError
from evalkit.core.types import Completion, GenerationRequest
from evalkit.serve.app import EvalkitHTTPServer
from evalkit.serve.protocol import ServedModel
from evalkit.serve.service import GenerationService, ServiceError

CONTEXT = 64


class WordTokenizer:
    """One token per whitespace-separated word; a chat template of `role: content` lines."""

    chat_template = "role: content"
    eos_token_id = 0

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [hash(w) % 1000 for w in text.split()]}

    def apply_chat_template(self, messages: list, tokenize: bool, add_generation_prompt: bool) -> str:
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


def fake_text(request: GenerationRequest, seed: int) -> str:
    """What the fake backends 'generate': a pure function of (prompt, seed, max tokens)."""
    prompt = request.prompt_text if request.prompt_text is not None else request.messages[-1]["content"]
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
    """A stepping engine with a slot pool: one sample per slot, one sample finishes per slot per step."""

    name = "push-fake"

    def __init__(self, slots: int = 8) -> None:
        self.free = list(range(slots))
        self.num_slots = slots
        self.waiting: list[tuple[GenerationRequest, int]] = []
        self.running: list[tuple[GenerationRequest, int, int]] = []  # (request, k, slot)
        self.lock = threading.Lock()
        self.max_batch = 0

    def add_request(self, request: GenerationRequest) -> None:
        if request.messages and request.messages[-1]["content"] == "refuse me":
            raise BackendError("refused by the engine")
        with self.lock:
            self.waiting.extend((request, k) for k in range(request.n))

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def step(self) -> list[Completion]:
        while self.waiting and self.free:
            request, k = self.waiting.pop(0)
            self.running.append((request, k, self.free.pop()))
        self.max_batch = max(self.max_batch, len(self.running))
        done, self.running = self.running, []
        for _, _, slot in done:
            self.free.append(slot)
        return [fake_completion(request, k) for request, k, _ in done]

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        raise AssertionError("the service must drive a push backend through add_request/step")

    def model_info(self) -> dict:
        return {"backend": self.name}


@pytest.fixture(params=["push", "pull"])
def server(request):
    backend = PushBackend() if request.param == "push" else PullBackend()
    service = GenerationService(backend)
    model = ServedModel(
        name="tiny", aliases=("/models/tiny",), max_context=CONTEXT, tokenizer=WordTokenizer()
    )
    httpd = EvalkitHTTPServer(("127.0.0.1", 0), service, model, request_timeout=60)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as client:
        yield client, service, backend
    httpd.shutdown()
    httpd.server_close()
    service.close()


CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "two plus two"}], "max_tokens": 5}


@pytest.mark.parametrize(
    "path, body, status, code",
    [
        ("/v1/chat/completions", b"{not json", 400, "invalid_json"),
        ("/v1/chat/completions", b"[1, 2]", 400, "invalid_json"),
        ("/v1/chat/completions", json.dumps({**CHAT, "model": "gpt-9"}).encode(), 404, "model_not_found"),
        ("/v1/chat/completions", json.dumps({**CHAT, "n": 0}).encode(), 400, "invalid_value"),
        ("/v1/chat/completions", json.dumps({**CHAT, "n": "2"}).encode(), 400, "invalid_value"),
        (
            "/v1/chat/completions",
            json.dumps({**CHAT, "max_tokens": CONTEXT}).encode(),
            400,
            "context_length_exceeded",
        ),
        ("/v1/chat/completions", json.dumps({**CHAT, "max_tokens": 0}).encode(), 400, "invalid_value"),
        ("/v1/chat/completions", json.dumps({**CHAT, "temperature": -1}).encode(), 400, "invalid_value"),
        ("/v1/chat/completions", json.dumps({**CHAT, "top_p": 0}).encode(), 400, "invalid_value"),
        ("/v1/chat/completions", json.dumps({**CHAT, "stop": [1]}).encode(), 400, "invalid_value"),
        ("/v1/chat/completions", json.dumps({**CHAT, "stream": True}).encode(), 400, "stream_unsupported"),
        (
            "/v1/chat/completions",
            json.dumps({"model": "tiny", "messages": []}).encode(),
            400,
            "missing_messages",
        ),
        ("/v1/completions", json.dumps({"model": "tiny", "prompt": [1, 2, 3]}).encode(), 400, "bad_prompt"),
        ("/v1/completions", json.dumps({"prompt": "x " * CONTEXT}).encode(), 400, "context_length_exceeded"),
        ("/v1/embeddings", json.dumps(CHAT).encode(), 404, "not_found"),
    ],
)
def test_bad_requests_get_json_errors_and_the_server_keeps_serving(server, path, body, status, code):
    client, service, _ = server
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["type"]
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert service.in_flight == 0


def test_health_and_models(server):
    client, _, _ = server
    assert client.get("/health").json()["status"] == "ok"
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["tiny"]
    assert models["data"][0]["max_model_len"] == CONTEXT
    assert client.get("/v1/nothing").status_code == 404


def test_chat_response_has_n_choices_with_seed_plus_index_seeds(server):
    client, _, _ = server
    body = {**CHAT, "n": 3, "seed": 40, "stop": ["w9"]}
    data = client.post("/v1/chat/completions", json=body).json()
    assert data["object"] == "chat.completion" and data["model"] == "tiny"
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    request = GenerationRequest("x", tuple(CHAT["messages"]), (0,), (0,), _sampling(5, stop=("w9",)))
    expected = [fake_text(request, 40 + i) for i in range(3)]
    assert any(len(t.split()) < 5 for t in expected), "the stop string should cut at least one sample"
    assert [c["message"]["content"] for c in data["choices"]] == expected
    assert data["usage"]["completion_tokens"] == sum(len(t.split()) for t in expected)
    assert {c["finish_reason"] for c in data["choices"]} <= {"stop", "length"}


def test_one_request_per_sample_equals_one_request_with_n(server):
    client, _, _ = server
    together = client.post("/v1/chat/completions", json={**CHAT, "n": 4, "seed": 7}).json()
    alone = [
        client.post("/v1/chat/completions", json={**CHAT, "n": 1, "seed": 7 + i}).json()["choices"][0]
        for i in range(4)
    ]
    assert [c["message"]["content"] for c in together["choices"]] == [c["message"]["content"] for c in alone]


def test_completions_endpoint_uses_the_prompt_text(server):
    client, _, _ = server
    data = client.post(
        "/v1/completions", json={"model": "/models/tiny", "prompt": "abc", "max_tokens": 4, "seed": 1}
    )
    assert data.status_code == 200
    choice = data.json()["choices"][0]
    request = GenerationRequest("x", (), (0,), (0,), _sampling(4), prompt_text="abc")
    assert choice["text"] == fake_text(request, 1) and choice["finish_reason"] == "length"


def test_hundred_concurrent_requests_all_answered_and_nothing_leaks(server):
    client, service, backend = server

    def ask(i: int) -> tuple[int, str]:
        body = {**CHAT, "messages": [{"role": "user", "content": f"q{i}"}], "seed": i, "n": 1 + i % 3}
        response = client.post("/v1/chat/completions", json=body)
        return response.status_code, response.json()["choices"][-1]["message"]["content"]

    with ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(ask, range(100)))
    assert [status for status, _ in answers] == [200] * 100
    for i, (_, text) in enumerate(answers):
        request = GenerationRequest("x", ({"role": "user", "content": f"q{i}"},), (0,), (0,), _sampling(5))
        assert text == fake_text(request, i + i % 3)
    assert service.in_flight == 0
    if isinstance(backend, PushBackend):
        assert sorted(backend.free) == list(range(backend.num_slots)) and not backend.has_work()


def test_a_request_the_engine_refuses_gets_400_and_others_continue():
    backend = PushBackend()
    service = GenerationService(backend)
    refused = GenerationRequest("a", ({"role": "user", "content": "refuse me"},), (0,), (1,), _sampling(3))
    fine = GenerationRequest("b", ({"role": "user", "content": "ok"},), (0, 1), (1, 2), _sampling(3))
    with pytest.raises(ServiceError, match="refused by the engine"):
        service.generate(refused, timeout=30)
    assert [c.sample_index for c in service.generate(fine, timeout=30)] == [0, 1]
    assert service.in_flight == 0 and service.healthy
    service.close()


def test_a_backend_that_crashes_fails_waiting_callers_and_reports_unhealthy():
    class Crashing(PullBackend):
        def generate(self, requests):
            for _ in requests:
                raise RuntimeError("GPU on fire")
            yield from ()

    service = GenerationService(Crashing())
    request = GenerationRequest("a", ({"role": "user", "content": "x"},), (0,), (1,), _sampling(3))
    with pytest.raises(ServiceError, match="GPU on fire"):
        service.generate(request, timeout=30)
    assert not service.healthy and service.in_flight == 0
    with pytest.raises(ServiceError, match="stopped"):
        service.submit(request)


def _sampling(max_new_tokens: int, stop: tuple[str, ...] = ()):
    from evalkit.core.types import SamplingParams

    return SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens, stop=stop)


def test_serving_the_hf_backend_gives_its_in_process_samples(tmp_path):
    """Pull mode with a real model: the hf backend on a tiny random Llama behind the HTTP server."""
    from model_backends.registry import BackendOptions, make_backend
    from tests.model_backends.test_hf_backend import make_tiny_llama

    folder = make_tiny_llama(tmp_path / "llama")
    backend = make_backend("hf", BackendOptions(model=str(folder)))
    messages = ({"role": "user", "content": "What is 2 plus 5?"},)
    request = GenerationRequest("q", messages, (0, 1), (21, 22), _sampling(6))
    expected = {c.sample_index: c.text for c in backend.generate([request])}
    service = GenerationService(backend)
    model = ServedModel(name="llama", max_context=256, tokenizer=backend.tokenizer)
    httpd = EvalkitHTTPServer(("127.0.0.1", 0), service, model, request_timeout=120)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1/chat/completions"
        body = {
            "messages": list(messages),
            "n": 2,
            "seed": 21,
            "max_tokens": 6,
            "temperature": 1.0,
            "top_p": 1.0,
        }
        with ThreadPoolExecutor(max_workers=4) as pool:  # concurrent clients share the one loop
            answers = list(pool.map(lambda _: httpx.post(url, json=body, timeout=120).json(), range(4)))
        for data in answers:
            assert [c["message"]["content"] for c in data["choices"]] == [expected[0], expected[1]]
        too_long = httpx.post(url, json={**body, "max_tokens": 256}, timeout=30)
        assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "context_length_exceeded"
        assert service.in_flight == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
        service.close()


def test_a_caller_that_gives_up_leaves_no_work_behind_once_the_backend_finishes():
    gate = threading.Event()

    class Gated(PullBackend):
        def generate(self, requests):
            for request in requests:
                gate.wait(30)  # bounded: the test opens the gate right away
                for k in range(request.n):
                    yield fake_completion(request, k)

    service = GenerationService(Gated())
    first = GenerationRequest("a", ({"role": "user", "content": "x"},), (0, 1), (1, 2), _sampling(3))
    with pytest.raises(TimeoutError):
        service.generate(first, timeout=0.01)  # the backend is held at the gate: this cannot finish
    assert service.in_flight == 1  # the abandoned request is still the backend's work
    gate.set()
    second = GenerationRequest("b", ({"role": "user", "content": "y"},), (0,), (3,), _sampling(3))
    assert [c.request_id for c in service.generate(second, timeout=30)] == ["b"]  # the caller's own id
    assert service.in_flight == 0  # the first one's samples arrived (in order, before b's) and were dropped
    service.close()


@pytest.mark.parametrize(
    "engine_limit, info_limit, config_limit, expected",
    [(4096, 100, 50, 4096), (None, 100, 50, 100), (None, None, 50, 50), (None, None, None, None)],
)
def test_serve_context_limit_prefers_the_engine_then_model_info_then_config(
    tmp_path, engine_limit, info_limit, config_limit, expected
):
    from types import SimpleNamespace

    from evalkit.cli.serve_cmd import max_context_of

    backend = PullBackend()
    if engine_limit is not None:
        backend.engine = SimpleNamespace(context_limit=engine_limit)
    backend.model_info = lambda: {"max_context": info_limit}
    if config_limit is not None:
        (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": config_limit}))
    assert max_context_of(backend, str(tmp_path)) == expected
