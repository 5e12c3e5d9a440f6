"""The demo's plan: the tiny SambaY run, then SmolLM2 through `evalkit run --backend hf --model FILE.gguf`
when the wheel is installed (else a note saying how to add it), then leaderboard and report. The commands
are recorded, not run (the real runs: test_smollm2_gguf.py and `make demo`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit import demo
from evalkit.core.run_folder import RunFolder


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    commands: list[tuple[str, ...]] = []
    monkeypatch.setattr(demo, "_evalkit", lambda *args: commands.append(args))
    made = iter(["sambay-run", "hf-run"])
    monkeypatch.setattr(demo, "_newest_run", lambda results: RunFolder(results / next(made)))
    (tmp_path / "tiny-sambay").mkdir()
    (tmp_path / "tiny-sambay" / "config.json").write_text("{}")  # the checkpoint is already written
    return commands


def test_with_the_wheel_smollm2_runs_through_the_hf_backend_as_a_user_types_it(
    recorded, tmp_path, monkeypatch
):
    gguf = tmp_path / "pkg" / demo.SMOLLM2_FILE
    monkeypatch.setattr(demo, "smollm2_gguf", lambda: gguf)
    demo.main(["--out", str(tmp_path)])
    assert [c[0] for c in recorded] == ["run", "run", "leaderboard", "report"]
    sambay, hf = recorded[0], recorded[1]
    assert sambay[1:3] == ("--backend", "sambay")
    assert hf[1:7] == ("--backend", "hf", "--model", str(gguf), "--task", "arith-demo")
    assert "pack_prompts=true" in hf and hf[hf.index("--out") + 1] == str(tmp_path / "results")
    results = tmp_path / "results"
    assert recorded[3][1:3] == (str(results / "sambay-run"), str(results / "hf-run"))


def test_without_the_wheel_the_demo_runs_sambay_and_says_how_to_add_the_real_model(
    recorded, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(demo, "smollm2_gguf", lambda: None)
    demo.main(["--out", str(tmp_path)])
    assert [c[0] for c in recorded] == ["run", "leaderboard", "report"]
    assert recorded[0][1:3] == ("--backend", "sambay")
    printed = capsys.readouterr().out
    assert demo.SMOLLM2_INSTALL in printed and "no real-model row" in printed
    assert "random weights" in printed and "SmolLM2" not in printed.split("The rows:")[1]


def test_smollm2_gguf_is_found_through_the_installed_package(tmp_path, monkeypatch):
    package = tmp_path / demo.SMOLLM2_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert demo.smollm2_gguf() is None  # the package without its file
    (package / demo.SMOLLM2_FILE).write_bytes(b"GGUF")
    assert demo.smollm2_gguf() == Path(package / demo.SMOLLM2_FILE)
