"""The `evalkit` command. Each module below registers its commands on `app`; heavy imports stay inside
the command functions so `evalkit --help` and `evalkit tasks` start fast."""

from __future__ import annotations

import sys

import click
import typer
from typer.core import TyperGroup

from evalkit.core.errors import EvalkitError

# `evalkit --help` lists the commands in the order a user meets them, not in the order the modules below
# happen to register them; a command missing here is listed after these.
COMMAND_ORDER = (
    "run", "score", "merge", "pool", "compare", "leaderboard", "report", "tasks", "show-prompt", "serve",
)  # fmt: skip


class _ReadingOrder(TyperGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)  # registration order, kept for commands not in COMMAND_ORDER
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(COMMAND_ORDER)))


app = typer.Typer(
    cls=_ReadingOrder,
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
        from rich.markup import escape

        # escape: a message is text, not markup ("pip install 'evalkit[ray]'" must keep its brackets)
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
