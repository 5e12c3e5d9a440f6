"""The `evalkit` command. Each module below registers its commands on `app`; heavy imports stay inside
the command functions so `evalkit --help` and `evalkit tasks` start fast."""

from __future__ import annotations

import sys

import typer

from evalkit.core.errors import EvalkitError

app = typer.Typer(
    name="evalkit",
    help="Evaluate reasoning models on AIME 2024/2025, MATH-500 and GPQA Diamond the way their model cards do.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules (import for their side effect of registering commands).
from evalkit.cli import compare_cmd, report_cmd, run_cmd, serve_cmd, tasks_cmd  # noqa: E402,F401


def main() -> None:
    """Entry point: user-facing errors become one red line and exit code 2, never a traceback."""
    try:
        app()
    except EvalkitError as exc:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
