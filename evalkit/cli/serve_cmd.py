"""`evalkit serve`: a model behind an OpenAI-compatible HTTP API (see evalkit/serve/).

The port is bound before the model loads, so a bad or busy --port is a one-line error at once. This
module wires the backend into the serve package: the chat template (`backend.render_prompt`, the one the
run path uses), the context limit (`backend.context_limit`) and the token counter.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import typer

from evalkit.cli import app
from evalkit.core.errors import EvalkitError
from evalkit.core.types import stable_hash

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TORCH_BACKENDS = {"sambay", "hf", "vllm"}


def max_context_of(backend: Any) -> int | None:
    """The most tokens (prompt + generated) one request may use, as the backend knows it from its
    checkpoint: `context_limit` (sambay), else model_info()["max_context"] (hf); None = no limit known."""
    limit = getattr(backend, "context_limit", None) or backend.model_info().get("max_context")
    return int(limit) if limit else None


def served_model(backend: Any, model_path: str, name: str) -> Any:
    """What the HTTP layer needs to know about the backend's model, as a ServedModel."""
    from evalkit.serve.protocol import ServedModel
    from model_backends.chat import encode_prompt, render_messages

    tokenizer = getattr(backend, "tokenizer", None)
    render: Callable | None = getattr(backend, "render_prompt", None)
    if render is None and tokenizer is not None:
        render = lambda messages: render_messages(tokenizer, messages)  # noqa: E731
    count = None if tokenizer is None else lambda text: len(encode_prompt(tokenizer, text))
    return ServedModel(
        name=name,
        aliases=(model_path,),
        max_context=max_context_of(backend),
        render_prompt=render,
        count_tokens=count,
        created=int(time.time()),
        fingerprint="evalkit-" + stable_hash(backend.model_info(), 12),
    )


def torch_threads(requested: int | None) -> int:
    """Intra-op threads for a torch backend behind the server: --threads, else OMP_NUM_THREADS, else one
    fewer than the usable cores (at least 1). The HTTP event loop and the generation loop need a core
    of their own: an OpenMP pool on every core waits at each barrier for a descheduled thread, which made
    batched (concurrent) steps many times slower than single requests (benchmarks/serve.py)."""
    if requested is not None:
        if requested < 1:
            raise EvalkitError(f"--threads must be at least 1, got {requested}")
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return max(1, len(os.sched_getaffinity(0)) - 1)


def _positive(value: float, flag: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise EvalkitError(f"{flag} must be a positive number of seconds, got {value}")
    return value


@app.command()
def serve(
    model: str = typer.Option(..., "--model", help="checkpoint folder or Hub id"),
    backend: str = typer.Option("sambay", "--backend", help="backend that generates (sambay, hf, vllm)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback by default)"),
    port: int = typer.Option(8000, "--port", help="TCP port; 0 picks a free one"),
    max_slots: int | None = typer.Option(None, "--max-slots", help="sambay: concurrent sequences"),
    served_model_name: str = typer.Option(
        None, "--served-model-name", help="name in /v1/models (default: --model)"
    ),
    dtype: str = typer.Option("auto", "--dtype"),
    device: str = typer.Option("auto", "--device"),
    request_timeout: float = typer.Option(3600.0, "--request-timeout", help="seconds a request may wait"),
    body_timeout: float = typer.Option(30.0, "--body-timeout", help="seconds to receive a request body"),
    threads: int | None = typer.Option(
        None, "--threads", help="torch CPU threads (default: OMP_NUM_THREADS, else usable cores - 1)"
    ),
    verbose: bool = typer.Option(False, "--verbose", help="log every HTTP request to stderr"),
) -> None:
    """Serve a model over HTTP: /health, /v1/models, /v1/completions, /v1/chat/completions."""
    from evalkit.cli.wiring import announce
    from evalkit.serve.app import ServeSettings, create_app
    from evalkit.serve.server import bind_socket, serve_forever
    from evalkit.serve.service import GenerationService
    from model_backends.registry import BACKENDS, BackendOptions, make_backend, preflight

    settings = ServeSettings(
        request_timeout=_positive(request_timeout, "--request-timeout"),
        body_timeout=_positive(body_timeout, "--body-timeout"),
    )
    if backend not in BACKENDS:
        raise EvalkitError(f"unknown backend {backend!r}; choose one of: {', '.join(sorted(BACKENDS))}")
    if max_slots is not None and max_slots < 1:
        raise EvalkitError(f"--max-slots must be at least 1, got {max_slots}")
    intra_op = torch_threads(threads)
    options = BackendOptions(model=model, dtype=dtype, device=device, max_slots=max_slots)
    preflight(backend, options)  # --device, --dtype, the checkpoint's config.json: before anything starts
    sock = bind_socket(host, port)  # before the model loads: a busy port fails in a second, not minutes
    if host not in LOOPBACK:
        typer.secho(
            f"warning: listening on {host}: anyone who can reach it can use the model", fg="yellow", err=True
        )
    service = None
    try:
        if backend in TORCH_BACKENDS:
            import torch

            torch.set_num_threads(intra_op)
        engine = make_backend(backend, options)
        announce(engine)
        name = served_model_name or model
        service = GenerationService(engine)
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host  # an IPv6 address in a URL

        def ready() -> None:  # one parseable line: scripts read the port from it after --port 0
            print(f"evalkit serve: {name} ({backend}) at http://{shown}:{bound_port}/v1", flush=True)

        serve_forever(create_app(service, served_model(engine, model, name), settings), sock, ready, verbose)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if service is not None:
            service.close()
