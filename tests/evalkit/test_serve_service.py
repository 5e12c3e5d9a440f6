"""GenerationService (the one generation loop behind evalkit serve): rejection, crashes, aborts measured
in engine steps, listeners, and serving a real hf model in pull mode; plus the CLI's context limit."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from evalkit.core.types import GenerationRequest
from evalkit.serve.service import GenerationService, RequestAborted, RequestRejected, ServiceError
from tests.evalkit.serve_fakes import PullBackend, PushBackend, fake_completion, sampling


def request(content: str = "x", n: int = 1, max_new_tokens: int = 3) -> GenerationRequest:
    messages = ({"role": "user", "content": content},)
    return GenerationRequest(
        "caller", messages, tuple(range(n)), tuple(range(10, 10 + n)), sampling(max_new_tokens)
    )


def test_a_request_the_engine_refuses_fails_alone_and_others_continue():
    service = GenerationService(PushBackend())
    with pytest.raises(RequestRejected, match="refused by the engine"):
        service.generate(request("refuse me"), timeout=30)
    got = service.generate(request("ok", n=2), timeout=30)
    assert [(c.request_id, c.sample_index) for c in got] == [("caller", 0), ("caller", 1)]
    assert service.in_flight == 0 and service.healthy
    service.close()


def test_a_backend_that_crashes_fails_waiting_callers_and_reports_unhealthy():
    class Crashing(PullBackend):
        def generate(self, requests):
            for _ in requests:
                raise RuntimeError("GPU on fire")
            yield from ()

    service = GenerationService(Crashing())
    with pytest.raises(ServiceError, match="GPU on fire"):
        service.generate(request(), timeout=30)
    assert not service.healthy and service.in_flight == 0
    with pytest.raises(ServiceError, match="stopped"):
        service.submit(request())


def test_the_listener_gets_each_sample_then_none():
    service = GenerationService(PushBackend())
    events, done = [], threading.Event()

    def listen(item):
        events.append(item)
        if item is None:
            done.set()

    ticket = service.submit(request(n=3, max_new_tokens=4), listen)
    assert done.wait(30)
    assert sorted(e.sample_index for e in events[:-1]) == [0, 1, 2] and events[-1] is None
    assert {e.request_id for e in events[:-1]} == {"caller"}  # the caller's id, not the internal one
    assert [c.sample_index for c in ticket.result()] == [0, 1, 2]
    service.close()


def test_an_abort_reaches_the_engine_within_a_step_and_frees_its_slots():
    backend = PushBackend(step_seconds=0.002)
    service = GenerationService(backend)
    ticket = service.submit(request(n=4, max_new_tokens=100_000))
    while len(backend.running) < 4:
        time.sleep(0.001)
    asked_at = backend.steps
    service.abort(ticket)
    with pytest.raises(RequestAborted):
        ticket.wait(1)
    while backend.has_work():
        time.sleep(0.001)
    assert backend.aborted[ticket.request.request_id] - asked_at <= 2
    assert service.in_flight == 0 and sorted(backend.free) == list(range(backend.num_slots))
    service.abort(ticket)  # idempotent
    service.close()


def test_a_request_aborted_before_the_engine_saw_it_is_never_added():
    gate = threading.Event()

    class Held(PushBackend):
        def step(self):
            gate.wait(30)  # holds the loop inside a step while the test aborts the queued request
            return super().step()

    backend = Held()
    service = GenerationService(backend)
    first = service.submit(request("first"))
    while not backend.seen:
        time.sleep(0.001)
    second = service.submit(request("second"))
    service.abort(second)
    gate.set()
    assert [c.text for c in first.wait(30)] == [fake_completion(backend.seen[0], 0).text]
    assert [r.messages[0]["content"] for r in backend.seen] == ["first"] and backend.aborted == {}
    assert service.in_flight == 0
    service.close()


def test_a_timed_out_caller_without_backend_abort_leaves_no_work_once_the_backend_finishes():
    gate = threading.Event()

    class Gated(PullBackend):
        def generate(self, requests):
            for r in requests:
                gate.wait(30)  # bounded: the test opens the gate right away
                for k in range(r.n):
                    yield fake_completion(r, k)

    service = GenerationService(Gated())
    with pytest.raises(TimeoutError):
        service.generate(request(n=2), timeout=0.01)  # the backend is held at the gate
    assert service.in_flight == 1  # the abandoned request is still the backend's work
    gate.set()
    assert [c.request_id for c in service.generate(request("y"), timeout=30)] == ["caller"]
    assert service.in_flight == 0  # the first one's samples arrived (before y's) and were dropped
    service.close()


def test_serving_the_hf_backend_gives_its_in_process_samples(tmp_path):
    """Pull mode with a real model: the hf backend on a tiny random Llama behind the HTTP server."""
    from evalkit.cli.serve_cmd import served_model
    from evalkit.serve.app import ServeSettings, create_app
    from evalkit.serve.server import BackgroundServer
    from model_backends.registry import BackendOptions, make_backend
    from tests.model_backends.test_hf_backend import make_tiny_llama

    folder = make_tiny_llama(tmp_path / "llama")
    backend = make_backend("hf", BackendOptions(model=str(folder)))
    messages = ({"role": "user", "content": "What is 2 plus 5?"},)
    req = GenerationRequest("q", messages, (0, 1), (21, 22), sampling(6))
    expected = {c.sample_index: c.text for c in backend.generate([req])}
    service = GenerationService(backend)
    app = create_app(service, served_model(backend, str(folder), "llama"), ServeSettings(request_timeout=120))
    try:
        with BackgroundServer(app) as server:
            url = server.url + "/v1/chat/completions"
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
            limit = json.loads((folder / "config.json").read_text())["max_position_embeddings"]
            too_long = httpx.post(url, json={**body, "max_tokens": limit}, timeout=30)
            assert (
                too_long.status_code == 400 and too_long.json()["error"]["code"] == "context_length_exceeded"
            )
            assert service.in_flight == 0
    finally:
        service.close()


@pytest.mark.parametrize(
    "own, info_limit, expected",
    [(2048, 4096, 2048), (None, 4096, 4096), (None, None, None)],
)
def test_serve_context_limit_is_the_backends_own(own, info_limit, expected):
    """The backend knows its checkpoint's limit (sambay: context_limit; hf: model_info max_context); serve
    never re-reads config.json."""
    from evalkit.cli.serve_cmd import max_context_of

    backend = PullBackend()
    if own is not None:
        backend.context_limit = own
    backend.model_info = lambda: {"max_context": info_limit}
    assert max_context_of(backend) == expected
