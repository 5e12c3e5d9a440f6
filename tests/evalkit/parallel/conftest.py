from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalkit.cli import app
from tests.evalkit.parallel.helpers import SEEDED_CLI, cli, only_folder, records, run_args, seeded_args


@pytest.fixture(scope="session")
def single_run(tiny_checkpoint_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The reference: the same run in one process (in this one: no interpreter start to pay for)."""
    out = tmp_path_factory.mktemp("single")
    done = CliRunner().invoke(app, run_args(tiny_checkpoint_dir, out))
    assert done.exit_code == 0, done.output
    folder = only_folder(out)
    return folder, records(folder), folder.results()


@pytest.fixture(scope="session")
def seeded_single_run(tmp_path_factory: pytest.TempPathFactory):
    """The seeded backend's run in one process (the reference of the kill tests)."""
    out = tmp_path_factory.mktemp("seeded-single")
    done = cli(*seeded_args(out), command=SEEDED_CLI)
    assert done.returncode == 0, done.stderr
    folder = only_folder(out)
    return folder, records(folder), folder.results()
