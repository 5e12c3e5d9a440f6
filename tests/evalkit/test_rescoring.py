"""Re-scoring without the model: `score` is pure, `evalkit score` / `merge` use the answer type stored in
config.json, and folders written before it was stored are scored by looking their task up."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from evalkit.cli import app
from evalkit.core.errors import EvalkitError
from evalkit.core.run_folder import RunFolder
from evalkit.core.types import stable_hash
from evalkit.run_scoring import score
from tests.evalkit.test_runner import options, run_seeded


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    folder, results = run_seeded(options(tmp_path_factory.mktemp("run")))
    return folder, results


def _strip_checker(folder: RunFolder) -> None:
    """config.json as evalkit wrote it before it stored the checker section."""
    header = json.loads(folder.config_path.read_text())
    del header["checker"]
    folder.config_path.write_text(json.dumps(header, indent=2) + "\n")


def _copy(folder: RunFolder, target) -> RunFolder:
    target.mkdir()
    for path in folder.path.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return RunFolder(target)


def test_score_is_pure_and_reproduces_the_stored_verdicts(scored_run):
    folder, results = scored_run
    before = {p.name: p.read_bytes() for p in folder.path.iterdir()}
    header = folder.header()
    scored = score(folder.completions(), header.config, header.problems, header.checker, workers=1)
    assert scored.scores == folder.scores() and scored.metrics == results.metrics
    assert {p.name: p.read_bytes() for p in folder.path.iterdir()} == before  # nothing written


def test_evalkit_score_of_a_folder_from_before_the_checker_section(scored_run, tmp_path):
    folder, results = scored_run
    old = _copy(folder, tmp_path / "old")
    _strip_checker(old)
    old.scores_path.unlink()
    config_text = old.config_path.read_text()
    done = CliRunner().invoke(app, ["score", str(old.path), "--workers", "1"])
    assert done.exit_code == 0, done.output
    assert old.scores() == folder.scores() and old.results().metrics == results.metrics
    assert old.config_path.read_text() == config_text  # config.json is never rewritten


def test_an_old_folder_of_an_unknown_task_says_why_it_cannot_be_scored(scored_run, tmp_path):
    folder, _ = scored_run
    old = _copy(folder, tmp_path / "old")
    _strip_checker(old)
    header = json.loads(old.config_path.read_text())
    header["config"]["task"] = "retired-task"
    header["run_id"] = stable_hash(header["config"])  # a folder of that task, not an edited one
    old.config_path.write_text(json.dumps(header))
    done = CliRunner().invoke(app, ["score", str(old.path), "--workers", "1"])
    assert isinstance(done.exception, EvalkitError)
    message = str(done.exception)
    assert (
        "predates the stored answer type" in message and "'retired-task'" in message and "\n" not in message
    )


def test_merging_an_old_folder_stores_the_checker_in_the_merged_one(scored_run, tmp_path):
    folder, results = scored_run
    old = _copy(folder, tmp_path / "old")
    _strip_checker(old)
    done = CliRunner().invoke(app, ["merge", str(old.path), "--out", str(tmp_path / "m"), "--workers", "1"])
    assert done.exit_code == 0, done.output
    merged = RunFolder(tmp_path / "m" / folder.path.name)
    assert merged.checker().answer_type == "integer" and merged.results().metrics == results.metrics
