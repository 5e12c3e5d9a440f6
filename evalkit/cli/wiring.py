"""Where the CLI joins the parts: task names -> Task objects, a backend name + options -> a Backend,
and the answer type of run folders written before config.json stored it.

Only evalkit/cli/ (and the demo) import `tasks` and `model_backends`; the harness gets the objects.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from evalkit.core.errors import EvalkitError
from evalkit.core.records import CheckerSpec
from evalkit.core.run_folder import RunFolder
from evalkit.core.types import Backend, SamplingParams, Task
from evalkit.planning import RunOptions


def check_backend_name(name: str) -> None:
    from model_backends.registry import BACKENDS

    if name not in BACKENDS:
        raise EvalkitError(f"unknown backend {name!r}; choose one of: {', '.join(sorted(BACKENDS))}")


def resolve_tasks(names: Sequence[str]) -> list[Task]:
    """The Task of each name, in order; an unknown name is a one-line error listing the valid ones."""
    from tasks import get_task

    return [get_task(name) for name in names]


def run_backend_options(options: RunOptions, **cli_extra: Any) -> Any:
    """The BackendOptions of `evalkit run`: RunOptions + the backend-only flags (None = the default)."""
    from model_backends.registry import BackendOptions

    extra = {k: v for k, v in cli_extra.items() if v is not None}
    return BackendOptions(
        model=options.model, revision=options.revision, from_file=options.from_file, **extra
    )


def preflight_run(options: RunOptions, **cli_extra: Any) -> None:
    """The backend's checks that need no model (slots, device, dtype, the checkpoint's context limit
    against --max-new-tokens): a mistake fails in a second, before the weights load."""
    from model_backends.registry import preflight

    sampling = SamplingParams(options.temperature, options.top_p, options.max_new_tokens)
    preflight(options.backend, run_backend_options(options, **cli_extra), sampling)


def make_run_backend(options: RunOptions, **cli_extra: Any) -> Backend:
    """The backend of `evalkit run`: RunOptions + the backend-only flags (None = the backend's default)."""
    from model_backends.registry import make_backend

    backend = make_backend(options.backend, run_backend_options(options, **cli_extra))
    announce(backend)
    return backend


def announce(backend: Backend) -> None:
    """Print a backend's one start-up line (the sambay backend's ops path, device and dtype) to stderr:
    backends print nothing themselves, the CLI says what runs."""
    describe = getattr(backend, "describe", None)
    if callable(describe):
        print(describe(), file=sys.stderr)


def checker_of(folder: RunFolder) -> CheckerSpec:
    """What scoring `folder` needs: config.json's "checker" section.

    Folders written before evalkit stored it hold only built-in tasks (task files came later), so their
    task's answer type is looked up by name in the registry: the registry is the one truth for it, where
    a table of known names here would be a second copy to keep in step.
    """
    stored = folder.checker()
    if stored is not None:
        return stored
    from tasks import get_task

    task = folder.config().task
    try:
        return CheckerSpec(get_task(task).answer_type)
    except EvalkitError as err:
        raise EvalkitError(
            f"{folder.config_path} predates the stored answer type and its task {task!r} is unknown here "
            f"({err}); re-score it with the evalkit version that wrote it"
        ) from None
