"""What evalkit says when a run stops or ends incomplete is true about what is stored and what a re-run
does (through `evalkit.cli.main`, with a seeded backend that is interrupted after a given sample)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.core.run_folder import RunFolder
from model_backends.registry import BACKENDS, BackendOptions
from tests.evalkit.fake_backend import SeededAnswerBackend
from tests.evalkit.test_cli_bad_input import invoke

ARGS = ["--model", "m", "--task", "arith-demo", "--workers", "1", "--n", "2", "--limit", "6"]


class Interrupted(SeededAnswerBackend):
    """Ctrl-C after `after` samples."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def generate(self, requests):
        for count, completion in enumerate(super().generate(requests)):
            if count == self.after:
                raise KeyboardInterrupt
            yield completion


def create(options: BackendOptions) -> SeededAnswerBackend:
    after = options.extra.get("after")
    return SeededAnswerBackend() if after is None else Interrupted(int(after))


@pytest.fixture(autouse=True)
def backend(monkeypatch):
    monkeypatch.setitem(BACKENDS, "stop-test", __name__)


def run(monkeypatch, capsys, out: Path, *extra: str) -> tuple[int, str]:
    return invoke(monkeypatch, capsys, ["run", "--backend", "stop-test", *ARGS, "--out", str(out), *extra])


def test_ctrl_c_before_the_first_sample_leaves_nothing(tmp_path, monkeypatch, capsys):
    code, err = run(monkeypatch, capsys, tmp_path / "out", "--backend-option", "after=0")
    assert code == 2 and err.splitlines()[-1] == (
        "error: interrupted before any sample was stored; no run folder was written"
    )
    assert not (tmp_path / "out").exists()


def test_ctrl_c_later_says_what_is_stored_and_the_rerun_finishes_it(tmp_path, monkeypatch, capsys):
    code, err = run(monkeypatch, capsys, tmp_path / "out", "--backend-option", "after=5")
    [folder] = list((tmp_path / "out").iterdir())
    assert code == 2 and err.splitlines()[-1] == (
        f"error: interrupted; stored: 5 samples in {folder}; re-running the same command keeps them and "
        "generates only the missing samples"
    )
    code, err = run(monkeypatch, capsys, tmp_path / "out")
    assert code == 0 and RunFolder(folder).results().final and len(RunFolder(folder).completions()) == 12


def test_an_incomplete_shard_says_to_run_the_other_shards(tmp_path, monkeypatch, capsys):
    code, err = run(monkeypatch, capsys, tmp_path / "out", "--shard", "1/2")
    [folder] = list((tmp_path / "out").iterdir())
    assert code == 0
    assert err.splitlines()[-1] == (
        f"arith-demo is INCOMPLETE (6 samples missing): not a final result; shard 1/2 is done; run the "
        f"other shards into {folder} (or into their own folders and `evalkit merge` them)"
    )
