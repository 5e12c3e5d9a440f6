"""`evalkit serve`: a model behind an OpenAI-compatible HTTP API (see evalkit/serve/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from evalkit.cli import app
from evalkit.core.errors import EvalkitError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def max_context_of(backend: Any, model_path: str) -> int | None:
    """The most tokens (prompt + generated) one request may use: the engine's own limit when it has one,
    else the backend's model_info()["max_context"], else config.json's max_position_embeddings."""
    engine_limit = getattr(getattr(backend, "engine", None), "context_limit", None)
    if engine_limit:
        return int(engine_limit)
    info_limit = backend.model_info().get("max_context")
    if info_limit:
        return int(info_limit)
    config = Path(model_path) / "config.json"
    if config.is_file():
        limit = json.loads(config.read_text()).get("max_position_embeddings")
        return int(limit) if limit else None
    return None


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
    verbose: bool = typer.Option(False, "--verbose", help="log every HTTP request to stderr"),
) -> None:
    """Serve a model over HTTP: /health, /v1/models, /v1/completions, /v1/chat/completions."""
    from evalkit.serve.app import EvalkitHTTPServer
    from evalkit.serve.protocol import ServedModel
    from evalkit.serve.service import GenerationService
    from model_backends.registry import BackendOptions, make_backend

    if host not in LOOPBACK:
        typer.secho(
            f"warning: listening on {host}: anyone who can reach it can use the model", fg="yellow", err=True
        )
    options = BackendOptions(model=model, dtype=dtype, device=device, max_slots=max_slots)
    engine = make_backend(backend, options)
    tokenizer = getattr(engine, "tokenizer", None)
    name = served_model_name or model
    served = ServedModel(
        name=name, aliases=(model,), max_context=max_context_of(engine, model), tokenizer=tokenizer
    )
    service = GenerationService(engine)
    try:
        server = EvalkitHTTPServer((host, port), service, served, request_timeout, verbose)
    except OSError as err:
        service.close()
        raise EvalkitError(f"cannot listen on {host}:{port}: {err}; pick another --port") from err
    bound_host, bound_port = server.server_address[:2]
    # One parseable line: tests and scripts read the port from it when --port 0 was asked for.
    print(f"evalkit serve: {name} ({backend}) at http://{bound_host}:{bound_port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        service.close()
