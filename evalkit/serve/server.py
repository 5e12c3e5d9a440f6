"""Running the app: bind the socket (before anything heavy, so a bad or busy port is a one-line error),
then uvicorn on it, in the foreground (`evalkit serve`) or in a thread (tests, benchmarks).

uvicorn's HTTP implementation is pinned to h11 (pure Python, always installed with uvicorn) so the
behaviour does not change when httptools happens to be installed. uvicorn closes idle keep-alive
connections (`timeout_keep_alive`) but has no limit on a client that opens a connection and never
finishes its request headers; `HeaderTimeoutH11` adds that limit (the app itself bounds the body).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from evalkit.core.errors import EvalkitError

HEADER_TIMEOUT = 30.0
KEEP_ALIVE_TIMEOUT = 5.0
GRACEFUL_SHUTDOWN = 5.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; EvalkitError (one line) when that is impossible."""
    if isinstance(port, bool) or not 0 <= port <= 65535:
        raise EvalkitError(f"--port must be between 0 and 65535 (0 picks a free port), got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise EvalkitError(
            f"cannot listen on {host}:{port}: unknown host ({err.strerror}); check --host"
        ) from err
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart right after a previous server
        sock.bind(address)
        sock.listen(2048)  # listen now: a second server on the same port fails here, not later
    except OSError as err:
        sock.close()
        hint = "pick another --port (0 picks a free one)"
        if err.errno is not None and err.strerror:
            raise EvalkitError(f"cannot listen on {host}:{port}: {err.strerror}; {hint}") from err
        raise EvalkitError(f"cannot listen on {host}:{port}: {err}; {hint}") from err
    return sock


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, plus: a connection that waits longer than `header_timeout` seconds for
    the headers of its next request (none sent, or only a part) is closed."""

    header_timeout = HEADER_TIMEOUT

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._waiting_since = self.loop.time()
        self._watchdog = self.loop.call_later(self.header_timeout, self._check_headers)

    def on_response_complete(self) -> None:
        self._waiting_since = self.loop.time()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._watchdog.cancel()
        super().connection_lost(exc)

    def _check_headers(self) -> None:
        if self.transport.is_closing():
            return
        waiting = self.cycle is None or self.cycle.response_complete
        elapsed = self.loop.time() - self._waiting_since
        if waiting and elapsed >= self.header_timeout:
            self.transport.close()
            return
        delay = self.header_timeout - elapsed if waiting else self.header_timeout
        self._watchdog = self.loop.call_later(max(delay, 0.05), self._check_headers)


def uvicorn_config(app: Any, verbose: bool = False, header_timeout: float = HEADER_TIMEOUT) -> uvicorn.Config:
    protocol = type("EvalkitH11", (HeaderTimeoutH11,), {"header_timeout": header_timeout})
    return uvicorn.Config(
        app,
        http=protocol,
        lifespan="off",
        log_level="info" if verbose else "warning",
        access_log=verbose,
        timeout_keep_alive=int(KEEP_ALIVE_TIMEOUT),
        timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN),
    )


def serve_forever(
    app: Any, sock: socket.socket, on_ready: Callable[[], None], verbose: bool = False, **kwargs: Any
) -> None:
    """Run uvicorn on `sock` until Ctrl-C / SIGTERM; `on_ready()` once it accepts connections."""
    server = uvicorn.Server(uvicorn_config(app, verbose, **kwargs))

    async def main() -> None:
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.02)
        if server.started:
            on_ready()
        await serving

    asyncio.run(main())


class BackgroundServer:
    """uvicorn in a daemon thread on a free loopback port (tests and benchmarks); a context manager."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        self.sock = bind_socket(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = uvicorn.Server(uvicorn_config(app, **kwargs))
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the background server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
