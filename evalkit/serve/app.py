"""The HTTP layer of `evalkit serve`: a standard-library ThreadingHTTPServer whose handler threads parse
and validate requests, hand them to the one GenerationService, and wait for their completions.

Endpoints: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions.
Every error is a JSON body `{"error": {"message", "type", "code"}}` with a 4xx/5xx status; a handler
never lets an exception escape (that would drop the connection without an answer).
"""

from __future__ import annotations

import json
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from evalkit.core.errors import EvalkitError
from evalkit.core.types import stable_hash
from evalkit.serve.protocol import ApiError, ServedModel, build_response, parse_request
from evalkit.serve.service import GenerationService, RequestRejected, ServiceError

MAX_BODY_BYTES = 16 * 1024 * 1024
ROUTES = {"/v1/completions": "completions", "/v1/chat/completions": "chat"}


class EvalkitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the listen backlog: bursts of concurrent clients must not be refused

    def __init__(
        self,
        address: tuple[str, int],
        service: GenerationService,
        model: ServedModel,
        request_timeout: float = 3600.0,
        verbose: bool = False,
    ) -> None:
        super().__init__(address, Handler)
        self.service = service
        self.model = model
        self.request_timeout = request_timeout
        self.verbose = verbose
        self.created = int(time.time())
        self.fingerprint = "evalkit-" + stable_hash(service.backend.model_info(), 12)


class Handler(BaseHTTPRequestHandler):
    server: EvalkitHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, so clients reuse connections

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(self, status: int, payload: dict) -> None:
        blob = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left before its answer; nothing to tell it

    def _error(self, err: ApiError) -> None:
        self._send(err.status, err.body())

    def do_GET(self) -> None:  # noqa: N802 (the http.server naming)
        path = self.path.split("?", 1)[0].rstrip("/")
        service = self.server.service
        if path == "/health":
            ok = service.healthy
            status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            self._send(
                status,
                {
                    "status": "ok" if ok else "down",
                    "in_flight": service.in_flight,
                    "failure": service.failure,
                    "slots": service.slot_usage(),
                },
            )
        elif path == "/v1/models":
            entry = {
                "id": self.server.model.name,
                "object": "model",
                "created": self.server.created,
                "owned_by": "evalkit",
            }
            if self.server.model.max_context is not None:
                entry["max_model_len"] = self.server.model.max_context
            self._send(HTTPStatus.OK, {"object": "list", "data": [entry]})
        else:
            self._error(ApiError(404, f"no route GET {path}", "not_found"))

    def do_POST(self) -> None:  # noqa: N802
        try:
            self._handle_post()
        except ApiError as err:
            self._error(err)
        except Exception as err:  # the last guard: answer 500 instead of dropping the connection
            self._error(
                ApiError(
                    500, f"internal error: {type(err).__name__}: {err}", "internal_error", "server_error"
                )
            )

    def _read_json(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise ApiError(411, "a Content-Length header is required", "length_required")
        if int(length) > MAX_BODY_BYTES:
            raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes", "body_too_large")
        raw = self.rfile.read(int(length))
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ApiError(400, f"malformed JSON: {err}", "invalid_json") from err

    def _handle_post(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        endpoint = ROUTES.get(path)
        body = self._read_json()  # read the body first, so a keep-alive connection stays in sync
        if endpoint is None:
            raise ApiError(404, f"no route POST {path}", "not_found")
        try:
            request = parse_request(body, endpoint, self.server.model)
        except EvalkitError as err:  # e.g. no chat template for the chat endpoint
            raise ApiError(400, str(err), "invalid_request") from err
        try:
            completions = self.server.service.generate(request, timeout=self.server.request_timeout)
        except RequestRejected as err:
            raise ApiError(400, str(err), "request_rejected") from err
        except ServiceError as err:
            raise ApiError(503, str(err), "service_unavailable", "server_error") from err
        except TimeoutError as err:
            raise ApiError(504, f"generation did not finish: {err}", "timeout", "server_error") from err
        self._send(
            HTTPStatus.OK,
            build_response(endpoint, self.server.model.name, completions, self.server.fingerprint),
        )
