"""Backend names -> the module that builds them. Modules are imported only when asked for, so a missing
optional dependency (vllm, triton) costs nothing until that backend is chosen.

A backend module may also expose `preflight(options, sampling)`: the checks that need no model (option
values, device, the checkpoint's config.json), run before anything heavy so a mistake costs a second and
leaves nothing behind. `sampling` is None when no run's sampling is known yet (serve)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from evalkit.core.errors import BackendError
from evalkit.core.types import Backend, SamplingParams

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


def _module(name: str):
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of: {', '.join(sorted(BACKENDS))}")
    return importlib.import_module(BACKENDS[name])


def preflight(name: str, options: BackendOptions, sampling: SamplingParams | None = None) -> None:
    """The backend's light checks (see the module docstring); BackendError for the first problem."""
    check = getattr(_module(name), "preflight", None)
    if check is not None:
        check(options, sampling)


def make_backend(name: str, options: BackendOptions) -> Backend:
    return _module(name).create(options)
