"""The `evalkit` command. Each module below registers its commands on `app`; heavy imports stay inside
the command functions so `evalkit --help` and `evalkit tasks` start fast."""

from __future__ import annotations

import errno
import sys
import traceback

import click
import typer
from typer.core import TyperGroup

from evalkit.core.errors import EvalkitError, describe_os_error

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
    help="Evaluate reasoning models on AIME 2024-2026, HMMT, AMC, MATH-500, GPQA Diamond and your own task "
    "files, the way their model cards do.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules (import for their side effect of registering commands).
from evalkit.cli import compare_cmd, report_cmd, run_cmd, serve_cmd, tasks_cmd  # noqa: E402,F401


def _fail(message: str, code: int = 2) -> None:
    from rich.console import Console
    from rich.text import Text

    line = " ".join(str(message).split())  # one line, whatever the message held
    # The message as plain text: "[vllm]" or "['foo']" in it is not rich markup.
    Console(stderr=True).print(Text.assemble(("error:", "bold red"), " ", line), soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """Entry point: a user's mistake is one red `error:` line and exit code 2, never a traceback.

    - EvalkitError (bad option, bad data, a backend that cannot go on): its message.
    - A usage error (unknown option, `--n abc`, a missing --task): click's message and where the help is.
    - OSError (full disk, read-only folder, a path through a file): the path and the fix, in words.
    - Anything else is a bug in evalkit: the traceback stays visible (so it can be reported) and a last
      line says so, exit code 1. Nothing is written to a log file: a traceback can quote prompt text,
      and private tasks' text must not reach the disk.
    """
    try:  # typer >= 0.2x carries its own copy of click
        from typer._click import exceptions as click_errors
    except ImportError:  # older typer: click itself
        from click import exceptions as click_errors

    try:
        code = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:  # `evalkit` alone: the help, as before
        exc.show()
        sys.exit(exc.exit_code)
    except click_errors.UsageError as exc:
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _fail(f"{exc.format_message()}{where}", exc.exit_code)
    except click_errors.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except typer.Abort:
        _fail("interrupted", 130)
    except EvalkitError as exc:
        _fail(str(exc))
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # the reader of our output went away (`| head`): nothing to say
            sys.exit(1)
        _fail(describe_os_error(exc))
    except Exception:
        traceback.print_exc()
        print(
            "error: an unexpected error in evalkit (a bug, not your input); please report it with the "
            "traceback above and the command you ran",
            file=sys.stderr,
        )
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
