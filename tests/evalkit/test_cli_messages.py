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


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    from tests.model_backends.test_hf_backend import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("llama"))  # a context of 256 tokens


@pytest.mark.parametrize(("backend", "new_tokens"), [("sambay", "90"), ("hf", "200")])
def test_a_prompt_past_the_context_fails_before_any_sample_and_leaves_no_folder(
    backend, new_tokens, tiny_checkpoint_dir, tiny_llama, tmp_path, monkeypatch, capsys
):
    """Preflight passes (max_new_tokens fits the context) but the prompts do not: every prompt is checked
    before the first sample, so nothing is half-done and no folder is left to 'resume'."""
    if backend == "sambay":
        model = ["--model", str(tiny_checkpoint_dir), "--backend-option", "context_limit=100"]
    else:
        model = ["--model", str(tiny_llama)]
    args = [
        "run",
        "--backend",
        backend,
        *model,
        *ARGS[2:],
        "--max-new-tokens",
        new_tokens,
        "--out",
        str(tmp_path),
    ]
    code, err = invoke(monkeypatch, capsys, args)
    assert code == 2 and "Traceback" not in err
    line = err.splitlines()[-1]
    assert (
        line.startswith("error: request 'arith-000': prompt of ")
        and f"max_new_tokens {new_tokens} exceeds" in line
    )
    assert line.endswith("(nothing was stored and no run folder was written)")
    assert list(tmp_path.iterdir()) == []
