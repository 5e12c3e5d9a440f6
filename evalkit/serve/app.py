"""The HTTP layer of `evalkit serve`: a Starlette (ASGI) app that validates requests, hands them to the one
GenerationService and answers whole or streamed (server-sent events).

Why Starlette + uvicorn and plain StreamingResponse SSE: routing, HTTP/1.1 parsing (h11), keep-alive,
chunked bodies and client-disconnect signalling are a solved problem there, and the app stays one small
async file. OpenAI's stream format is only `data: <json>\\n\\n` lines and `data: [DONE]` (no event names,
ids or retry fields), so a StreamingResponse of those bytes is all it needs; sse-starlette would add a
dependency for features the OpenAI SDK never reads. Starlette's StreamingResponse also watches the
connection and cancels the stream when the client leaves, which is where the abort hooks in.

Endpoints: GET /health, GET /v1/models, GET /v1/models/{id}, POST /v1/completions,
POST /v1/chat/completions. Every error is `{"error": {"message", "type", "param", "code"}}` with a
4xx/5xx status (an error after a stream began is sent as one `data: {"error": ...}` event).

Timeouts: a request body must arrive within `body_timeout` seconds (else 408 and the connection is
closed: a client that sends less than its Content-Length can't hold it); generation may take
`request_timeout` seconds (else 504, or an error event when streaming, and the samples are aborted).
Disconnects: a client that goes away while its samples run (streaming or not) gets them aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from evalkit.core.types import Completion
from evalkit.serve.protocol import ApiError, Endpoint, ServedModel, ServeRequest, parse_json, parse_request
from evalkit.serve.responses import DONE, PING, ChunkWriter, build_response, error_event, model_entry
from evalkit.serve.service import GenerationService, RequestAborted, RequestRejected, ServiceError, Ticket


@dataclass(frozen=True)
class ServeSettings:
    request_timeout: float = 3600.0  # seconds one request may wait for its samples
    body_timeout: float = 30.0  # seconds to receive a request body once its headers arrived
    max_body_bytes: int = 16 * 1024 * 1024
    ping_interval: float = 15.0  # SSE keep-alive comment while a stream waits for its samples


def _error(err: ApiError) -> JSONResponse:
    # The body of a 408/413 was not read to its end: the connection cannot be reused.
    headers = {"Connection": "close"} if err.status in (408, 413) else None
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


def _service_error(err: ServiceError) -> ApiError:
    if isinstance(err, RequestRejected):
        return ApiError(400, str(err), "request_rejected")
    return ApiError(503, str(err), "service_unavailable", "server_error")


class _Inbox:
    """A ticket listener that hands the generation thread's events to this request's event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Completion | None] = asyncio.Queue()

    def __call__(self, item: Completion | None) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop is closed: the server is shutting down
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class _AbortingStream(StreamingResponse):
    """A StreamingResponse that aborts its ticket however it ends (finished, cancelled, client gone),
    even when the client left before the first chunk was produced."""

    def __init__(self, content: Any, on_close: Any) -> None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


async def _until_disconnected(request: Request) -> None:
    """Return when the client closes the connection (its body has been read: nothing else comes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def create_app(service: GenerationService, model: ServedModel, settings: ServeSettings = ServeSettings()):
    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and not length.isdigit():
            raise ApiError(400, f"bad Content-Length {length!r}", "bad_content_length")
        if length is not None and int(length) > settings.max_body_bytes:
            raise ApiError(413, f"the body is larger than {settings.max_body_bytes} bytes", "body_too_large")
        chunks, size = [], 0
        try:
            with anyio.fail_after(settings.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > settings.max_body_bytes:
                        raise ApiError(
                            413, f"the body is larger than {settings.max_body_bytes} bytes", "body_too_large"
                        )
                    chunks.append(chunk)
        except TimeoutError as err:
            expected = f" of the {length} announced" if length is not None else ""
            raise ApiError(
                408,
                f"the request body did not arrive within {settings.body_timeout:g} s "
                f"({size} bytes{expected}); send the whole body at once",
                "body_timeout",
            ) from err
        return b"".join(chunks)

    async def wait_whole(request: Request, parsed: ServeRequest) -> Response:
        inbox = _Inbox()
        ticket = service.submit(parsed.generation, inbox)
        gone = asyncio.ensure_future(_until_disconnected(request))
        try:
            deadline = inbox.loop.time() + settings.request_timeout
            while not ticket.done.is_set():
                remaining = deadline - inbox.loop.time()
                if remaining <= 0:
                    service.abort(ticket, "timed out")
                    return _error(
                        ApiError(
                            504,
                            f"generation did not finish within {settings.request_timeout:g} s",
                            "timeout",
                            "server_error",
                        )
                    )
                getting = asyncio.ensure_future(inbox.queue.get())
                await asyncio.wait({getting, gone}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                getting.cancel()
                if gone.done():
                    service.abort(ticket, "the client disconnected")
                    return Response(status_code=499)  # nobody reads it
            return JSONResponse(build_response(parsed.endpoint, model, ticket.result()))
        except ServiceError as err:
            return _error(_service_error(err))
        finally:
            gone.cancel()
            service.abort(ticket, "the request ended")  # no-op once answered; frees work on cancellation

    async def stream_events(parsed: ServeRequest, ticket: Ticket, inbox: _Inbox):
        writer = ChunkWriter(parsed.endpoint, model, parsed.include_usage)
        if parsed.endpoint == "chat":
            for index in range(parsed.generation.n):
                yield writer.opening(index)
        else:
            yield PING  # the completions format has no opening chunk: show the stream is alive at once
        deadline = inbox.loop.time() + settings.request_timeout
        while True:
            remaining = deadline - inbox.loop.time()
            if remaining <= 0:
                service.abort(ticket, "timed out")
                yield error_event(
                    f"generation did not finish within {settings.request_timeout:g} s", "timeout"
                )
                return
            try:
                item = await asyncio.wait_for(inbox.queue.get(), min(settings.ping_interval, remaining))
            except asyncio.TimeoutError:  # (TimeoutError itself only from Python 3.11 on)
                yield PING
                continue
            if item is None:
                break
            yield writer.text(item.sample_index, item.text)
            yield writer.finish(item.sample_index, item.finish_reason)
        try:
            completions = ticket.result()
        except RequestAborted:
            return
        except ServiceError as err:
            api = _service_error(err)
            yield error_event(api.message, api.code, api.type)
            return
        if parsed.include_usage:
            yield writer.usage(completions)
        yield DONE

    async def generate(request: Request, endpoint: Endpoint) -> Response:
        try:
            parsed = parse_request(parse_json(await read_body(request)), endpoint, model)
        except ApiError as err:
            return _error(err)
        except ClientDisconnect:
            return Response(status_code=499)
        if not parsed.stream:
            try:
                return await wait_whole(request, parsed)
            except ServiceError as err:  # submit() on a stopped service
                return _error(_service_error(err))
        inbox = _Inbox()
        try:
            ticket = service.submit(parsed.generation, inbox)
        except ServiceError as err:
            return _error(_service_error(err))
        return _AbortingStream(
            stream_events(parsed, ticket, inbox), lambda: service.abort(ticket, "the client disconnected")
        )

    async def chat(request: Request) -> Response:
        return await generate(request, "chat")

    async def completions(request: Request) -> Response:
        return await generate(request, "completions")

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [model_entry(model)]})

    async def one_model(request: Request) -> Response:
        asked = request.path_params["model_id"]
        if not model.accepts(asked):
            return _error(
                ApiError(
                    404,
                    f"the model {asked!r} does not exist here; this server has {model.name!r}",
                    "model_not_found",
                    param="model",
                )
            )
        return JSONResponse(model_entry(model))

    async def health(request: Request) -> Response:
        ok = service.healthy
        body = {
            "status": "ok" if ok else "down",
            "in_flight": service.in_flight,
            "failure": service.failure,
            "slots": service.slot_usage(),
            "steps": service.steps,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        what = "no route" if exc.status_code == 404 else "method not allowed for"
        code = "not_found" if exc.status_code == 404 else "method_not_allowed"
        return _error(ApiError(exc.status_code, f"{what} {request.method} {request.url.path}", code))

    async def internal_error(request: Request, exc: Exception) -> Response:
        message = f"internal error: {type(exc).__name__}: {exc}"
        return _error(ApiError(500, message, "internal_error", "server_error"))

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", one_model, methods=["GET"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ]
    handlers = {HTTPException: http_error, Exception: internal_error}
    return Starlette(routes=routes, exception_handlers=handlers)
