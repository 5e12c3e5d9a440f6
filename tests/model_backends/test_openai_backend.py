"""The openai backend against a scripted local server on 127.0.0.1: faults are retried, nothing is lost
or duplicated, and a server that stays down ends the run with a clear BackendError."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evalkit.core.errors import BackendError
from evalkit.core.types import GenerationRequest, SamplingParams, stable_hash
from model_backends.openai_backend import OpenAIBackend, retry_after_seconds
from model_backends.openai_retry import backoff_delay
from model_backends.registry import BackendOptions, make_backend

FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 0.5, "max_tries": 4}


class ScriptedServer(ThreadingHTTPServer):
    """faults[seed] = the faults of that seed's first attempts, in order; then it answers.
    `healthy_budget`: after that many good answers every request gets a 503 (a server that goes down)."""

    daemon_threads = True

    def __init__(self, faults: dict[int, list[str]] | None = None, healthy_budget: int | None = None) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.faults = faults or {}
        self.healthy_budget = healthy_budget
        self.attempts: Counter[int] = Counter()
        self.bodies: list[dict] = []
        self.headers_seen: list[dict] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # frees handlers that simulate a hung request
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        blob = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        self.wfile.write(blob)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.endswith("/models"):
            return self._send(200, {"object": "list", "data": [{"id": "served-x", "object": "model"}]})
        return self._send(404, {"error": {"message": "no such route"}})

    def do_POST(self) -> None:  # noqa: N802
        server = self.server
        with server.lock:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            self._answer()
        finally:
            with server.lock:
                server.in_flight -= 1

    def _answer(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            seed = body["seed"]
            attempt = server.attempts[seed]
            server.attempts[seed] += 1
            server.bodies.append(body)
            server.headers_seen.append(dict(self.headers))
            fault = (
                server.faults.get(seed, [])[attempt] if attempt < len(server.faults.get(seed, [])) else None
            )
            down = server.healthy_budget is not None and server.healthy_budget <= 0
            if fault is None and not down and server.healthy_budget is not None:
                server.healthy_budget -= 1
        if down:
            return self._send(503, {"error": {"message": "down for maintenance"}})
        if fault == "500":
            return self._send(500, {"error": {"message": "boom"}})
        if fault == "429":
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if fault == "timeout":
            server.release.wait(5)  # longer than the client's 0.5 s timeout; released at teardown
            return None
        if fault == "drop":
            self.close_connection = True
            return None  # no status line at all: the client sees a dropped connection
        if fault == "400":
            return self._send(400, {"error": {"message": "bad max_tokens"}})
        text = f"answer for seed {seed}"
        choice = {"index": 0, "finish_reason": "length" if body["max_tokens"] <= 3 else "stop"}
        if self.path.endswith("/chat/completions"):
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        usage = {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
        self._send(
            200,
            {
                "id": f"cmpl-{seed}",
                "model": body["model"],
                "choices": [choice],
                "usage": usage,
                "system_fingerprint": "fp1",
            },
        )


@pytest.fixture
def make_server():
    servers = []

    def start(**kwargs) -> ScriptedServer:
        server = ScriptedServer(**kwargs)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


def requests(num: int = 3, n: int = 2, max_new_tokens: int = 16, prompt_text: str | None = None) -> list:
    return [
        GenerationRequest(
            request_id=f"p{i}",
            messages=({"role": "user", "content": f"question {i}"},),
            sample_indices=tuple(range(n)),
            seeds=tuple(100 * i + k for k in range(n)),
            sampling=SamplingParams(
                temperature=0.6, top_p=0.95, max_new_tokens=max_new_tokens, stop=("</s>",)
            ),
            prompt_text=prompt_text,
        )
        for i in range(num)
    ]


def backend_for(server: ScriptedServer, **extra) -> OpenAIBackend:
    return make_backend("openai", BackendOptions(model="tiny", base_url=server.url, extra={**FAST, **extra}))


def test_one_http_request_per_sample_with_its_seed_and_everything_recorded(make_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server = make_server()
    completions = list(backend_for(server).generate(requests()))
    assert sorted((c.request_id, c.sample_index) for c in completions) == [
        (f"p{i}", k) for i in range(3) for k in range(2)
    ]
    assert sorted(body["seed"] for body in server.bodies) == [0, 1, 100, 101, 200, 201]
    for c in completions:
        seed = int(c.request_id[1:]) * 100 + c.sample_index
        assert c.text == f"answer for seed {seed}"
        assert (c.num_prompt_tokens, c.num_generated_tokens, c.finish_reason) == (7, 4, "stop")
        sent = next(b for b in server.bodies if b["seed"] == seed)
        assert sent == {
            "model": "tiny",
            "n": 1,
            "temperature": 0.6,
            "top_p": 0.95,
            "max_tokens": 16,
            "seed": seed,
            "stop": ["</s>"],
            "messages": [{"role": "user", "content": f"question {c.request_id[1:]}"}],
        }
        assert c.extra["request_hash"] == stable_hash(sent) and "request" not in c.extra  # never the prompt
        assert c.extra["response"] == {
            "id": f"cmpl-{seed}",
            "model": "tiny",
            "usage": {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11},
            "system_fingerprint": "fp1",
            "finish_reason": "stop",
        }
        assert c.extra["tries"] == 1
    assert {h.get("Authorization") for h in server.headers_seen} == {"Bearer sk-test"}


def test_completions_api_sends_the_rendered_prompt_and_maps_length(make_server):
    server = make_server()
    backend = backend_for(server, api="completions")
    completions = list(
        backend.generate(requests(num=1, n=1, max_new_tokens=3, prompt_text="<|user|>hi<|end|>"))
    )
    assert server.bodies[0]["prompt"] == "<|user|>hi<|end|>" and "messages" not in server.bodies[0]
    assert completions[0].finish_reason == "length" and completions[0].text == "answer for seed 0"


@pytest.mark.parametrize(
    "faults",
    [
        {1: ["timeout"]},
        {1: ["500"], 100: ["500", "500"]},
        {0: ["429"], 201: ["429", "500"]},
        {101: ["drop"], 200: ["drop", "drop"]},
        {0: ["500", "429", "drop"], 100: ["timeout"], 201: ["drop"]},
    ],
    ids=["timeout", "500", "429-retry-after", "dropped-connection", "mixed"],
)
def test_faults_are_retried_and_nothing_is_lost_or_duplicated(make_server, faults):
    server = make_server(faults=faults)
    completions = list(backend_for(server, concurrency=4).generate(requests()))
    keys = [(c.request_id, c.sample_index) for c in completions]
    assert sorted(keys) == [(f"p{i}", k) for i in range(3) for k in range(2)]  # each exactly once
    for c in completions:
        seed = int(c.request_id[1:]) * 100 + c.sample_index
        assert c.text == f"answer for seed {seed}"
        assert c.extra["tries"] == len(faults.get(seed, [])) + 1
        assert server.attempts[seed] == len(faults.get(seed, [])) + 1


@pytest.mark.parametrize("concurrency", [1, 3])
def test_no_more_requests_in_flight_than_the_concurrency_limit(make_server, concurrency):
    server = make_server(faults={0: ["429"], 100: ["500"]})  # (a hung handler would outlive its client)
    completions = list(backend_for(server, concurrency=concurrency).generate(requests(num=4, n=3)))
    assert len(completions) == 12
    assert 1 <= server.max_in_flight <= concurrency


def test_a_server_that_goes_down_keeps_what_was_yielded_and_names_what_failed(make_server):
    server = make_server(healthy_budget=2)
    got = []
    with pytest.raises(
        BackendError, match=r"4 sample\(s\) failed at .*: p1 sample 0, p1 sample 1, p2 sample 0"
    ) as info:
        for completion in backend_for(server, concurrency=1, max_tries=3).generate(requests()):
            got.append(completion)
    assert 'last error after 3 tries: HTTP 503: {"error": {"message": "down for maintenance"}}' in str(
        info.value
    )
    assert [(c.request_id, c.sample_index) for c in got] == [("p0", 0), ("p0", 1)]
    assert sum(server.attempts.values()) == 2 + 4 * 3  # bounded: each failed sample tried max_tries times


def test_no_server_at_all_fails_after_bounded_retries():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = make_backend(
        "openai",
        BackendOptions(
            model="tiny", base_url=f"http://127.0.0.1:{port}/v1", extra={**FAST, "concurrency": 1}
        ),
    )
    with pytest.raises(
        BackendError,
        match=r"1 sample\(s\) failed at .*: p0 sample 0; last error after 4 tries: cannot connect \(.+\)$",
    ):
        list(backend.generate(requests(num=1, n=1)))


def test_a_4xx_is_not_retried(make_server):
    server = make_server(faults={0: ["400"]})
    with pytest.raises(BackendError, match="HTTP 400"):
        list(backend_for(server).generate(requests(num=1, n=1)))
    assert server.attempts[0] == 1


@pytest.mark.parametrize(
    "header, seconds",
    [
        ("3", 3.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("soon", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_parsing(header, seconds):
    assert retry_after_seconds(header) == seconds


def test_retry_after_wins_over_the_exponential_backoff_but_is_capped():
    assert backoff_delay(attempt=0, retry_after=2.5, backoff=1.0, max_backoff=10) == 2.5
    assert backoff_delay(attempt=0, retry_after=1000, backoff=1.0, max_backoff=10) == 10
    assert (
        4.0 <= backoff_delay(attempt=3, retry_after=None, backoff=1.0, max_backoff=10) <= 8.0
    )  # 2**3, jitter


@pytest.mark.parametrize(
    "options, message",
    [
        (BackendOptions(model="m"), "needs --base-url"),
        (
            BackendOptions(model="m", base_url="http://127.0.0.1:1/v1", extra={"api": "embeddings"}),
            "unknown api",
        ),
        *[
            (BackendOptions(model="m", base_url="http://127.0.0.1:1/v1", extra={key: value}), message)
            for key, value, message in [
                ("timeout", float("nan"), "timeout must be a finite number > 0, got nan"),
                ("timeout", "inf", "timeout must be a finite number > 0, got 'inf'"),
                ("timeout", 0, "timeout must be a finite number > 0, got 0"),
                ("backoff", -1, "backoff must be a finite number >= 0, got -1"),
                ("max_tries", 0, "max_tries must be an integer >= 1, got 0"),
                ("max_tries", 2.5, "max_tries must be an integer >= 1, got 2.5"),
                ("concurrency", "many", "concurrency must be an integer >= 1, got 'many'"),
                ("concurrency", True, "concurrency must be an integer >= 1, got True"),
            ]
        ],
    ],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(BackendError, match=re.escape(message)):
        make_backend("openai", options)


def test_pre_rendered_prompt_on_chat_api_is_refused(make_server):
    server = make_server()
    with pytest.raises(BackendError, match="api=completions"):
        list(backend_for(server).generate(requests(num=1, n=1, prompt_text="x")))


def test_evalkit_run_stops_clearly_when_the_server_goes_down_and_resumes_later(make_server, tmp_path):
    """The runner stores what arrived before the failure; the same command against a healthy server then
    asks only for the missing samples."""
    from typer.testing import CliRunner

    from evalkit.cli import app

    def run(server: ScriptedServer):
        args = [
            "run",
            "--backend",
            "openai",
            "--base-url",
            server.url,
            "--model",
            "tiny",
            "--task",
            "arith-demo",
        ]
        args += [
            "--n",
            "2",
            "--limit",
            "3",
            "--max-new-tokens",
            "8",
            "--out",
            str(tmp_path),
            "--workers",
            "1",
        ]
        for key, value in {**FAST, "concurrency": 1, "max_tries": 3}.items():
            args += ["--backend-option", f"{key}={value}"]
        return CliRunner().invoke(app, args)

    failing = make_server(healthy_budget=2)
    result = run(failing)
    assert isinstance(result.exception, BackendError) and "after 3 tries: HTTP 503" in str(result.exception)
    (run_dir,) = list(tmp_path.iterdir())
    assert len((run_dir / "completions.jsonl").read_text().splitlines()) == 2
    healthy = make_server()
    assert run(healthy).exit_code == 0
    assert len(healthy.bodies) == 4  # only the missing samples were requested
    lines = (run_dir / "completions.jsonl").read_text().splitlines()
    keys = sorted((json.loads(x)["problem_id"], json.loads(x)["sample_index"]) for x in lines)
    assert keys == [(f"arith-{i:03d}", k) for i in range(3) for k in range(2)]


def test_without_model_the_first_served_model_is_used(make_server):
    server = make_server()
    backend = make_backend("openai", BackendOptions(base_url=server.url, extra=FAST))
    assert backend.model == "served-x"
    list(backend.generate(requests(num=1, n=1)))
    assert server.bodies[0]["model"] == "served-x"


def test_without_model_and_without_a_server_is_a_one_line_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(BackendError, match="cannot list models at http://127.0.0.1") as info:
        make_backend("openai", BackendOptions(base_url=f"http://127.0.0.1:{port}/v1", extra=FAST))
    assert "\n" not in str(info.value)
