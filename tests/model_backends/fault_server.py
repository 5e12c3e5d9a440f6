"""A fault-injecting OpenAI-compatible server on 127.0.0.1 for the openai backend's tests.

Each POST draws its fate from a random generator seeded by (salt, the request's seed, its attempt
number), so a test run is reproducible while every sample still meets its own mix of faults:

- "500": HTTP 500;  "429": HTTP 429 with `Retry-After: 0`;
- "drop": the connection is closed without a status line;
- "delay": the answer comes `delay` seconds late (past the client's timeout);
- "malformed": HTTP 200 whose body is not JSON;  "truncated": HTTP 200 whose JSON is cut off midway
  (Content-Length announces the whole body, then the connection closes);
- "wrong_shape": HTTP 200 JSON without choices.

`always_fail` seeds get HTTP 500 on every attempt. `answers[seed]` counts the good answers given.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MIX = {"500": 0.12, "429": 0.12, "drop": 0.08, "delay": 0.06, "malformed": 0.04, "truncated": 0.04}


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the listen backlog: 32 clients connecting at once must not time out

    def __init__(
        self,
        mix: dict[str, float] | None = None,
        always_fail: set[int] = frozenset(),
        delay: float = 1.0,
        salt: str = "evalkit",
        status_for_all: int | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", 0), FaultHandler)
        self.mix = MIX if mix is None else mix
        self.always_fail = set(always_fail)
        self.delay = delay
        self.salt = salt
        self.status_for_all = status_for_all
        self.lock = threading.Lock()
        self.attempts: Counter[int] = Counter()
        self.answers: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self.release = threading.Event()  # ends pending delays at teardown

    def handle_error(self, request, client_address) -> None:
        pass  # a late answer to a client that timed out meets a closed socket: expected here

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def fate(self, seed: int, attempt: int) -> str | None:
        if seed in self.always_fail:
            return "500"
        draw = random.Random(f"{self.salt}:{seed}:{attempt}").random()
        for fault, rate in self.mix.items():
            if draw < rate:
                return fault
            draw -= rate
        return None

    def __enter__(self) -> FaultServer:
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class FaultHandler(BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, blob: bytes, headers: dict | None = None, cut: int | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        self.wfile.write(blob if cut is None else blob[:cut])
        if cut is not None:
            self.wfile.flush()
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self._send(
            200, json.dumps({"object": "list", "data": [{"id": "faulty", "object": "model"}]}).encode()
        )

    def do_POST(self) -> None:  # noqa: N802
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        seed = body["seed"]
        with server.lock:
            attempt = server.attempts[seed]
            server.attempts[seed] += 1
            server.bodies.append(body)
            fate = server.fate(seed, attempt)
            server.faults[fate or "ok"] += 1
        if server.status_for_all is not None:
            return self._send(server.status_for_all, b'{"error": {"message": "no"}}')
        if fate == "500":
            return self._send(500, b'{"error": {"message": "boom"}}')
        if fate == "429":
            return self._send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "0"})
        if fate == "drop":
            self.close_connection = True
            return None
        if fate == "delay" and server.release.wait(server.delay):
            return None  # teardown: nobody waits for this answer any more
        text = f"answer for seed {seed}: \\boxed{{{seed % 100}}}"
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "finish_reason": "stop", "message": message, "text": text}
        usage = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
        answer = {"id": f"cmpl-{seed}-{attempt}", "model": body["model"], "choices": [choice], "usage": usage}
        blob = json.dumps(answer).encode()
        if fate == "malformed":
            return self._send(200, b"<html>502 Bad Gateway</html>")
        if fate == "truncated":
            return self._send(200, blob, cut=len(blob) // 2)
        if fate == "wrong_shape":
            return self._send(200, b'{"object": "chat.completion", "choices": []}')
        with server.lock:
            server.answers[seed] += 1
        return self._send(200, blob)
