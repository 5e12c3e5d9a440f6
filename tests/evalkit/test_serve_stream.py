"""evalkit serve: SSE streaming (chunks, usage, [DONE], n > 1), timeouts on slow clients, and the abort of
a disconnected client's samples (streaming or not), on deterministic in-process backends."""

from __future__ import annotations

import json
import socket
import time

import httpx
import openai
import pytest

from evalkit.core.types import GenerationRequest
from evalkit.serve.app import ServeSettings
from tests.evalkit.serve_fakes import PullBackend, PushBackend, fake_text, sampling, serving

MESSAGES = [{"role": "user", "content": "two plus two"}]


@pytest.fixture(scope="module", params=["push", "pull"])
def sdk(request):
    backend = PushBackend() if request.param == "push" else PullBackend()
    with serving(backend) as (url, service):
        yield openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0), url, service


def sse_events(url: str, path: str, body: dict) -> list:
    """The raw `data:` payloads of one streamed response (JSON decoded, except [DONE])."""
    with httpx.stream("POST", url + path, json=body, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    return [line[6:] if line == "data: [DONE]" else json.loads(line[6:]) for line in lines]


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_stream_through_the_sdk_equals_the_whole_answer(sdk, include_usage):
    client, _, _ = sdk
    common = dict(model="tiny", messages=MESSAGES, max_tokens=6, n=3, seed=11, stop=["w7"])
    whole = client.chat.completions.create(**common)
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(client.chat.completions.create(**common, stream=True, **options))
    texts, reasons, roles = [""] * 3, [None] * 3, set()
    for chunk in chunks:
        assert chunk.object == "chat.completion.chunk" and chunk.id == chunks[0].id
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            roles |= {choice.delta.role} - {None}
            reasons[choice.index] = choice.finish_reason or reasons[choice.index]
    assert texts == [c.message.content for c in whole.choices]
    assert reasons == [c.finish_reason for c in whole.choices] and roles == {"assistant"}
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
        assert all(c.usage is None for c in chunks[:-1])
    else:
        assert all(c.usage is None for c in chunks) and chunks[-1].choices


def test_completions_stream_through_the_sdk(sdk):
    client, _, _ = sdk
    chunks = list(client.completions.create(model="tiny", prompt="abc", max_tokens=4, seed=1, stream=True))
    request = GenerationRequest("x", (), (0,), (0,), sampling(4), prompt_text="abc")
    assert "".join(c.choices[0].text for c in chunks) == fake_text(request, 1)
    assert [c.choices[0].finish_reason for c in chunks][-1] == "length"
    assert {c.object for c in chunks} == {"text_completion"}


def test_raw_stream_format_each_choice_opens_fills_finishes_then_usage_and_done(sdk):
    _, url, _ = sdk
    body = {"messages": MESSAGES, "max_tokens": 3, "n": 2, "seed": 5, "stream": True}
    events = sse_events(url, "/v1/chat/completions", {**body, "stream_options": {"include_usage": True}})
    assert (
        events[-1] == "[DONE]"
        and events[-2]["choices"] == []
        and events[-2]["usage"]["completion_tokens"] == 6
    )
    choices = [
        (e["choices"][0]["index"], e["choices"][0]["delta"], e["choices"][0]["finish_reason"])
        for e in events[:-2]
    ]
    for index in (0, 1):
        mine = [(delta, reason) for i, delta, reason in choices if i == index]
        assert mine[0] == ({"role": "assistant", "content": ""}, None)
        assert mine[1][0]["content"] and mine[1][1] is None
        assert mine[2] == ({}, "length")
    completions = sse_events(url, "/v1/completions", {"prompt": "abc", "max_tokens": 2, "stream": True})
    assert completions[-1] == "[DONE]" and "usage" not in completions[0]


def test_refused_parameters_are_a_400_before_any_stream_starts(sdk):
    client, _, _ = sdk
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="tiny", messages=MESSAGES, max_tokens=5, stream=True, logprobs=True
        )
    assert info.value.param == "logprobs"


def test_an_error_after_the_stream_started_reaches_the_sdk():
    with serving(PushBackend()) as (url, service):
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        refused = [{"role": "user", "content": "refuse me"}]  # the fake engine refuses it in add_request
        with pytest.raises(openai.APIError, match="refused by the engine"):
            list(client.chat.completions.create(model="tiny", messages=refused, max_tokens=5, stream=True))
        assert service.in_flight == 0


def _raw_post(url: str, path: str, body: bytes, announced: int | None = None) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    length = len(body) if announced is None else announced
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    sock.sendall(head.encode() + body)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_body_shorter_than_its_content_length_gets_408_and_the_connection_closed():
    with serving(PushBackend(), ServeSettings(body_timeout=0.3)) as (url, service):
        sock = _raw_post(url, "/v1/completions", b'{"prompt": "ab', announced=100)
        answer = _read_all(sock)  # returns only because the server closes the connection
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408") and b"connection: close" in answer.lower()
        assert b'"code":"body_timeout"' in answer and b"14 bytes of the 100 announced" in answer
        assert httpx.post(url + "/v1/completions", json={"prompt": "abc", "max_tokens": 2}).status_code == 200
        assert service.in_flight == 0


@pytest.mark.parametrize("sent", [b"", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"])
def test_a_client_that_never_finishes_its_headers_is_disconnected(sent):
    with serving(PushBackend(), header_timeout=0.3) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(sent)
        assert _read_all(sock) == b""  # closed by the server (the 10 s socket timeout would raise)
        sock.close()


def _wait_idle(service, backend, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while service.in_flight or backend.has_work():
        assert time.monotonic() < deadline, f"still busy: {service.in_flight} in flight"
        time.sleep(0.005)


def _wait_running(backend, n: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while len(backend.running) < n:
        assert time.monotonic() < deadline, "the request never started"
        time.sleep(0.005)


LONG = {"max_tokens": 5000, "n": 4, "seed": 1}


@pytest.mark.parametrize("streaming", [False, True])
def test_a_disconnected_client_has_its_samples_aborted_within_a_step(streaming):
    backend = PushBackend(step_seconds=0.005)
    with serving(backend, model={"max_context": 10_000}) as (url, service):
        body = {"messages": MESSAGES, **LONG, "stream": streaming}
        sock = _raw_post(url, "/v1/chat/completions", json.dumps(body).encode())
        _wait_running(backend, 4)
        sock.close()  # 5000 steps of 5 ms would take 25 s
        closed_at = backend.steps
        _wait_idle(service, backend)
        assert len(backend.aborted) == 1 and backend.running == []
        (aborted_at,) = backend.aborted.values()
        assert aborted_at - closed_at <= 3  # a few steps, not 5000
        assert sorted(backend.free) == list(range(backend.num_slots))
        health = httpx.get(url + "/health").json()
        assert (health["in_flight"], health["slots"]["busy"]) == (0, 0)


def test_an_httpx_stream_closed_early_aborts_and_other_requests_go_on():
    backend = PushBackend(step_seconds=0.002)
    with serving(backend, model={"max_context": 10_000}) as (url, service):
        body = {"messages": MESSAGES, **LONG, "stream": True}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as response:
            first = next(response.iter_lines())
            assert first.startswith("data: ") and '"role": "assistant"' in first
        answer = httpx.post(
            url + "/v1/chat/completions", json={"messages": MESSAGES, "max_tokens": 3}, timeout=30
        )
        assert answer.status_code == 200
        _wait_idle(service, backend)
        assert len(backend.aborted) == 1


def test_without_backend_abort_the_samples_finish_and_are_dropped():
    backend = PushBackend(step_seconds=0.002, with_abort=False)
    with serving(backend, model={"max_context": 10_000}) as (url, service):
        body = {"messages": MESSAGES, "max_tokens": 200, "n": 2, "seed": 1}
        sock = _raw_post(url, "/v1/chat/completions", json.dumps(body).encode())
        _wait_running(backend, 2)
        sock.close()
        deadline = time.monotonic() + 5
        while service.in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        assert service.in_flight == 0 and not backend.has_work()  # they ran to their end, then were dropped


def test_a_request_past_its_timeout_is_answered_504_and_aborted():
    backend = PushBackend(step_seconds=0.005)
    settings = ServeSettings(request_timeout=0.3)
    with serving(backend, settings, model={"max_context": 10_000}) as (url, service):
        whole = httpx.post(url + "/v1/chat/completions", json={"messages": MESSAGES, **LONG}, timeout=30)
        assert whole.status_code == 504 and whole.json()["error"]["code"] == "timeout"
        events = sse_events(url, "/v1/chat/completions", {"messages": MESSAGES, **LONG, "stream": True})
        assert events[-1]["error"]["code"] == "timeout"
        _wait_idle(service, backend)
        assert len(backend.aborted) == 2


def test_a_waiting_stream_sends_keep_alive_comments_the_sdk_ignores():
    backend = PushBackend(step_seconds=0.01)
    with serving(backend, ServeSettings(ping_interval=0.05)) as (url, _):
        body = {"messages": MESSAGES, "max_tokens": 30, "seed": 3, "stream": True}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as response:
            lines = list(response.iter_lines())
        assert ": keep-alive" in lines and lines[-2] == "data: [DONE]"  # (SSE events end with a blank line)
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        chunks = list(
            client.chat.completions.create(
                model="tiny", messages=MESSAGES, max_tokens=30, seed=3, stream=True
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        request = GenerationRequest("x", tuple(MESSAGES), (0,), (0,), sampling(30))
        assert text == fake_text(request, 3)
