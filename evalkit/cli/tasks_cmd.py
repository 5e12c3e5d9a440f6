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


@app.command("tasks")
def list_tasks(data_dir: DataDirOption = None) -> None:
    """List the benchmarks: problem count, default n, answer type, source, and where the data is."""
    from rich.console import Console
    from rich.table import Table

    from tasks import TASK_NAMES, get_task

    table = Table(title="evalkit tasks")
    for column in ("task", "problems", "default n", "answer type", "source", "data"):
        table.add_column(column, overflow="fold")
    for name in TASK_NAMES:
        task = get_task(name)
        problems, data = _data_status(task, data_dir)
        table.add_row(name, problems, str(task.default_n), task.answer_type, task.source, data)
    Console().print(table)


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
    task_name: Annotated[str, typer.Argument(metavar="TASK", help="task name (see `evalkit tasks`)")],
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
) -> None:
    """Print the exact user message one sample sees, its gold answer, and (GPQA) the option permutation."""
    from tasks import get_task

    task = get_task(task_name)
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
