"""`evalkit --help` lists the commands in reading order (run ... serve), not in module registration order."""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from evalkit.cli import COMMAND_ORDER, _ReadingOrder
from tests.evalkit.compare_helpers import cli


def test_help_lists_every_command_in_reading_order() -> None:
    code, text, _ = cli("--help")
    listed = re.findall(r"^│ ([a-z][a-z-]*)\s", text, flags=re.MULTILINE)
    assert code == 0
    assert listed == ["run", "score", "merge", "pool", "compare", "leaderboard", "report", "tasks",
                      "show-prompt", "serve"]  # fmt: skip
    assert tuple(listed) == COMMAND_ORDER


def test_a_command_missing_from_the_order_comes_last_in_registration_order() -> None:
    app = typer.Typer(cls=_ReadingOrder)
    for name in ("zeta", "serve", "alpha", "run"):
        app.command(name)(lambda: None)
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    listed = re.findall(r"^│ ([a-z][a-z-]*)\s", result.output, flags=re.MULTILINE)
    assert listed == ["run", "serve", "zeta", "alpha"]
