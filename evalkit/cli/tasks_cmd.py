"""`evalkit tasks` (what can be evaluated, and whether its data is here) and `evalkit show-prompt`
(the exact task-level user message and gold of one sample; rendering through a model's chat template is
the backend's job)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from evalkit.cli import app
from evalkit.core.errors import EvalkitError

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="benchmark data folder (default: $EVALKIT_DATA_DIR; else the Hugging Face Hub)",
        show_default=False,
    ),
]


TasksDirOption = Annotated[
    Path | None,
    typer.Option(
        "--tasks-dir",
        help="folder of task files (*.toml) to list, and whose names --task may use "
        "(default: $EVALKIT_TASKS_DIR)",
        show_default=False,
    ),
]


@app.command("tasks")
def list_tasks(data_dir: DataDirOption = None, tasks_dir: TasksDirOption = None) -> None:
    """List the benchmarks (problem count, default n, answer type, source, where the data is), the
    suites, and the task files of --tasks-dir / $EVALKIT_TASKS_DIR."""
    from rich.console import Console
    from rich.table import Table

    from evalkit.cli.wiring import tasks_dir as resolve_tasks_dir
    from tasks import SUITES, TASK_NAMES, get_task

    console = Console()
    table = Table(title="evalkit tasks")
    for column in ("task", "problems", "default n", "answer type", "source", "data"):
        table.add_column(column, overflow="fold")
    for name in TASK_NAMES:
        task = get_task(name)
        problems, data = _data_status(task, data_dir)
        table.add_row(name, problems, str(task.default_n), task.answer_type, task.source, data)
    console.print(table)
    suites = Table(title="suites (--task SUITE runs each member as its own task)")
    for column in ("suite", "tasks"):
        suites.add_column(column, overflow="fold")
    for name, members in SUITES.items():
        suites.add_row(name, ", ".join(members))
    console.print(suites)
    folder = resolve_tasks_dir(tasks_dir)
    if folder is not None:
        console.print(_task_file_table(folder))


def _task_file_table(folder: Path):
    """The task files of `folder`: name, count, answer type and path; a broken one shows its problem."""
    from rich.table import Table

    from evalkit.cli.wiring import task_files_in

    table = Table(title=f"task files in {folder}")
    for column in ("task", "problems", "default n", "answer type", "file"):
        table.add_column(column, overflow="fold")
    if not folder.is_dir():
        table.add_row("—", "—", "—", "—", f"BROKEN: {folder} is not a folder; fix --tasks-dir")
        return table
    files = task_files_in(folder)
    if not files:
        table.add_row("—", "—", "—", "—", f"no *.toml files in {folder}")
    for path in files:
        name, count, n, answer_type, where = _task_file_status(path)
        table.add_row(name, count, n, answer_type, where)
    return table


def _task_file_status(path: Path) -> tuple[str, str, str, str, str]:
    from tasks.task_file import load_task_file

    try:
        task = load_task_file(path)
        # Local data is counted; Hub data is not fetched just to list it.
        count = "— (Hub data, not fetched to list it)" if task.hub else str(len(task.load()))
    except EvalkitError as exc:
        return path.stem, "—", "—", "—", f"BROKEN: {exc}"
    return task.name, count, str(task.default_n), task.answer_type, str(path)


def _data_status(task, data_dir: Path | None) -> tuple[str, str]:
    """(problem count or "—", where the data is). Reads local data only; never goes to the Hub."""
    from evalkit.core.errors import DataError
    from evalkit.core.settings import resolve_data_dir

    if task.local_file is None:
        return str(len(task.load())), "built in"
    path = task.find_local(data_dir)
    if path is None:
        folder = resolve_data_dir(data_dir)
        looked = f"no {folder / task.local_file}" if folder else "no data folder set"
        return "—", f"no ({looked}); Hub fallback: {task.hub}"
    try:
        return str(len(task.load(data_dir))), f"yes: {path}"
    except DataError as exc:
        return "—", f"BROKEN: {exc}"


@app.command("show-prompt")
def show_prompt(
    task_name: Annotated[
        str, typer.Argument(metavar="TASK", help="task name or task file (.toml); see `evalkit tasks`")
    ],
    index: Annotated[int, typer.Option("--index", help="problem position in the task (0-based)")] = 0,
    problem_id: Annotated[
        str | None, typer.Option("--id", help="problem id (instead of --index)", show_default=False)
    ] = None,
    sample: Annotated[int, typer.Option("--sample", help="sample index (GPQA option order)")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="run seed (GPQA option order)")] = 0,
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", help="prompt template name (default: official)", show_default=False),
    ] = None,
    data_dir: DataDirOption = None,
    tasks_dir: TasksDirOption = None,
) -> None:
    """Print the exact messages one sample sees, its gold answer, and (GPQA, shuffled choice task files)
    the option permutation."""
    from evalkit.cli.wiring import resolve_task

    task = resolve_task(task_name, tasks_dir)
    problems = task.load(data_dir, prompt)
    if problem_id is not None:
        matches = [p for p in problems if p.id == problem_id]
        if not matches:
            raise EvalkitError(
                f"no problem with id '{problem_id}' in {task.name}; try --index 0..{len(problems) - 1}"
            )
        problem = matches[0]
    elif 0 <= index < len(problems):
        problem = problems[index]
    else:
        raise EvalkitError(
            f"--index {index} is out of range: {task.name} has problems 0..{len(problems) - 1}"
        )
    if sample < 0:
        raise EvalkitError(f"--sample must be >= 0, got {sample}")
    view = task.sample_view(problem, sample, seed)
    prompt_name = prompt or task.default_prompt
    out = sys.stdout
    out.write(
        f"# task {task.name} | problem {problem.id} | sample {sample} | seed {seed} | "
        f"prompt {prompt_name} ({task.prompt_hash(prompt)})\n"
    )
    for message in view.messages:
        out.write(f"# --- {message['role']} message (exact text between the markers) ---\n")
        out.write(message["content"] + "\n")
        out.write("# --- end ---\n")
    out.write(f"# gold: {view.gold}\n")
    if view.permutation is not None:
        out.write(f"# permutation (letter -> option index, 0 = correct): {list(view.permutation)}\n")
