"""Backend names -> the module that builds them. Modules are imported only when asked for, so a missing
optional dependency (vllm, triton) costs nothing until that backend is chosen."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from evalkit.core.errors import BackendError
from evalkit.core.types import Backend

# name -> module exposing `create(options: BackendOptions) -> Backend`
BACKENDS: dict[str, str] = {
    "sambay": "model_backends.sambay.backend",
    "hf": "model_backends.hf_backend",
    "vllm": "model_backends.vllm_backend",
    "openai": "model_backends.openai_backend",
    "replay": "model_backends.replay",
}


@dataclass(frozen=True)
class BackendOptions:
    """Everything the CLI can tell a backend. Each backend reads the fields it understands."""

    model: str | None = None  # Hub id, local folder, or served model name
    revision: str | None = None
    dtype: str = "auto"  # auto | bfloat16 | float16 | float32
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    from_file: str | None = None  # replay: completions file
    base_url: str | None = None  # openai: server URL
    max_slots: int | None = None  # sambay: concurrent sequences
    trust_remote_code: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def make_backend(name: str, options: BackendOptions) -> Backend:
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of: {', '.join(sorted(BACKENDS))}")
    module = importlib.import_module(BACKENDS[name])
    return module.create(options)
