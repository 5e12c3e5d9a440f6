"""Where the CLI joins the parts: task names, suites and task files -> Task objects, a backend name +
options -> a Backend, and the answer type of run folders written before config.json stored it.

Only evalkit/cli/ (and the demo) import `tasks` and `model_backends`; the harness gets the objects.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
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


TASKS_DIR_ENV = "EVALKIT_TASKS_DIR"


def tasks_dir(explicit: str | Path | None = None) -> Path | None:
    """The folder of the user's task files: --tasks-dir, else $EVALKIT_TASKS_DIR, else None."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    from_env = os.environ.get(TASKS_DIR_ENV, "")
    return Path(from_env).expanduser() if from_env else None


def task_files_in(folder: Path) -> list[Path]:
    """The task files (*.toml) directly in `folder`, by name."""
    return sorted(path for path in folder.glob("*.toml") if path.is_file())


def _find_in_tasks_dir(name: str, folder: Path | None) -> Any | None:
    """The task file in `folder` whose file stem or `name` is `name`, or None. Broken files are skipped
    here (they cannot be the one meant, and `evalkit tasks --tasks-dir` shows their problem)."""
    from tasks.task_file import TaskFileError, load_task_file

    if folder is None or not folder.is_dir():
        return None
    for path in task_files_in(folder):
        if path.stem == name:
            return load_task_file(path)  # named by its file: its mistakes are the user's to see
    for path in task_files_in(folder):
        try:
            task = load_task_file(path)
        except TaskFileError:
            continue
        if task.name == name:
            return task
    return None


def resolve_task(name: str, folder: Path | None = None) -> Any:
    """One --task value -> its Task: a built-in name, a path to a task file (*.toml), or the name of a
    task file in the tasks folder. Built-in names win over task files of the same name."""
    from tasks import TASK_NAMES, get_task, valid_names
    from tasks.task_file import is_task_file, load_task_file

    if name in TASK_NAMES:
        return get_task(name)
    if is_task_file(name) or Path(name).expanduser().is_file():
        return load_task_file(name)
    found = _find_in_tasks_dir(name, tasks_dir(folder))
    if found is not None:
        return found
    where = tasks_dir(folder)
    files = (
        f"; task files: a path to a .toml file, or a name from {where}"
        if where
        else (f"; or a task file: --task path/to/task.toml (or set {TASKS_DIR_ENV})")
    )
    raise EvalkitError(f"unknown task '{name}'; {valid_names()}{files}")


def resolve_tasks(names: Sequence[str], folder: Path | None = None) -> list[Task]:
    """The Task of each --task value, in order, with suites expanded to their members; an unknown name is
    a one-line error listing the valid tasks and suites."""
    from tasks import expand_suites

    return [resolve_task(name, folder) for name in expand_suites(list(names))]


def task_specs(tasks: Sequence[Task]) -> list[str]:
    """What a worker process resolves to the same tasks: the name of a built-in, a task file's absolute
    path (suites are already expanded; the worker's own folder settings do not matter)."""
    return [getattr(task, "file", None) or task.name for task in tasks]


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

    Folders written before evalkit stored it hold only built-in tasks (task files came later and always
    store it), so their
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
