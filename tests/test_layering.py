"""The dependency direction (pyproject.toml [tool.importlinter]) holds for the tree, and each contract
really breaks on the import it exists to forbid (a contract that cannot fail would check nothing)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

importlinter = pytest.importorskip("importlinter", reason="import-linter is in the dev extra: make setup")
grimp = pytest.importorskip("grimp")

from importlinter import configuration  # noqa: E402
from importlinter.contracts.forbidden import ForbiddenContract  # noqa: E402
from importlinter.contracts.protected import ProtectedContract  # noqa: E402

configuration.configure()  # what the lint-imports command does first (a timer, readers, the builder)

REPO = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
TYPES = {"forbidden": ForbiddenContract, "protected": ProtectedContract}
WIRING, CLIENTS, CORE, TOP, ENGINE = (c["name"] for c in CONFIG["contracts"])


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*CONFIG["root_packages"])


def kept(graph, name: str, extra_import: tuple[str, str] | None = None) -> bool:
    [spec] = [c for c in CONFIG["contracts"] if c["name"] == name]
    options = {k: v for k, v in spec.items() if k not in ("name", "type")}
    contract = TYPES[spec["type"]](name, {"root_packages": CONFIG["root_packages"]}, options)
    graph = copy.deepcopy(graph)
    if extra_import:
        graph.add_import(importer=extra_import[0], imported=extra_import[1], line_number=1, line_contents="x")
    return contract.check(graph, verbose=False).kept


def test_lint_imports_passes_on_the_tree():
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in done.stdout


@pytest.mark.parametrize("name", [WIRING, CLIENTS, CORE, TOP, ENGINE])
def test_every_contract_is_kept(graph, name):
    assert kept(graph, name)


@pytest.mark.parametrize(
    ("name", "importer", "imported"),
    [
        (WIRING, "evalkit.runner", "tasks"),  # the harness asking the registry itself
        (WIRING, "evalkit.report.loading", "model_backends.replay"),
        (WIRING, "tasks.aime24", "model_backends.registry"),
        (CLIENTS, "tasks.task", "evalkit.planning"),
        (CLIENTS, "model_backends.hf_backend", "evalkit.scoring"),
        (CLIENTS, "model_backends.replay", "evalkit.cli.wiring"),
        (CORE, "evalkit.core.types", "evalkit.scoring"),
        (CORE, "evalkit.core.run_folder", "tasks"),
        (CORE, "evalkit.core.identity", "model_backends.registry"),
        (TOP, "evalkit.runner", "evalkit.cli.wiring"),
        (TOP, "evalkit.demo", "evalkit.cli"),
        (ENGINE, "model_backends.sambay.scheduler", "evalkit.core.types"),
        (ENGINE, "model_backends.sambay.state", "model_backends.chat"),
        (ENGINE, "model_backends.sambay.ops.top_p", "evalkit.core.errors"),
    ],
)
def test_each_contract_breaks_on_the_import_it_forbids(graph, name, importer, imported):
    assert not kept(graph, name, (importer, imported))
