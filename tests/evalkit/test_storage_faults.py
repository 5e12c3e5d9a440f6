"""What the disk can do to a run, through `evalkit.cli.main`: a full disk mid-run keeps every stored sample
and says how many and what a re-run does; a read-only or unwritable --out fails before anything runs;
every file of a run folder gets the mode open() would give it; an edited config.json is refused by name."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import evalkit.core.files as files
from evalkit.core.run_folder import RunFolder
from evalkit.core.types import stable_hash
from model_backends.registry import BACKENDS
from tests.evalkit.test_cli_bad_input import invoke

REPO = Path(__file__).resolve().parents[2]
SEEDED = ["--backend", "seeded-test", "--model", "seeded-test", "--task", "arith-demo", "--workers", "1"]
ARGS = [*SEEDED, "--n", "4", "--limit", "10", "--max-new-tokens", "64"]


@pytest.fixture(autouse=True)
def seeded_backend(monkeypatch):
    monkeypatch.setitem(BACKENDS, "seeded-test", "tests.evalkit.fake_backend")


def error_line(err: str) -> str:
    [line] = [x for x in err.splitlines() if x.startswith("error:")]
    assert "Traceback" not in err
    return line


def only_folder(out: Path) -> RunFolder:
    [path] = list(out.iterdir())
    return RunFolder(path)


def test_a_full_disk_mid_run_keeps_what_is_stored_says_so_and_the_rerun_finishes(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    real_fsync, calls = os.fsync, []

    def fsync(fd):  # config.json (file + folder), then one per sample: the 11th sample finds a full disk
        calls.append(fd)
        if len(calls) > 2 + 10:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    code, err = invoke(monkeypatch, capsys, ["run", *ARGS, "--out", str(out)])
    monkeypatch.setattr(os, "fsync", real_fsync)
    folder = only_folder(out)
    assert code == 2
    assert error_line(err) == (
        f"error: {folder.path}/completions.jsonl: no space left on the device; free space, then re-run; "
        f"10 new samples were stored in {folder.path} (10/40 now); re-running the same command keeps them "
        "and generates only the 30 missing"
    )
    assert len(folder.completions()) == 10 and not folder.has_results()  # the failed write was undone
    code, err = invoke(monkeypatch, capsys, ["run", *ARGS, "--out", str(out)])
    assert code == 0, err
    keys = [
        json.loads(x)["sample_index"] for x in (folder.path / "completions.jsonl").read_text().splitlines()
    ]
    assert len(keys) == 40 and len({r.key for r in folder.completions()}) == 40 and folder.results().final


def test_a_full_disk_while_writing_the_results_says_how_to_score_later(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    real = files._create_temp

    def full(path):
        if path.name == "scores.jsonl":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path)

    monkeypatch.setattr(files, "_create_temp", full)
    code, err = invoke(monkeypatch, capsys, ["run", *ARGS, "--out", str(out)])
    monkeypatch.setattr(files, "_create_temp", real)
    folder = only_folder(out)
    assert code == 2 and error_line(err) == (
        f"error: {folder.scores_path}: no space left on the device; free space, then re-run; the 40 stored "
        f"samples in {folder.path} are kept: once it can be written, `evalkit score {folder.path}` writes "
        "the results"
    )
    assert len(folder.completions()) == 40 and not folder.has_results()
    assert not list(folder.path.glob(".*.tmp"))  # no temp file left behind
    code, err = invoke(monkeypatch, capsys, ["score", str(folder.path), "--workers", "1"])
    assert code == 0 and folder.results().final


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        (errno.EROFS, "the file system is read-only; write somewhere else (e.g. another --out)"),
        (
            errno.EACCES,
            "permission denied; choose a folder you can write (e.g. another --out) or fix its permissions",
        ),
    ],
    ids=["read-only file system", "read-only folder"],
)
def test_an_unwritable_out_fails_before_the_backend_starts(tmp_path, monkeypatch, capsys, code, fix):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(kwargs.get("dir")))

    monkeypatch.setattr(files.tempfile, "mkdtemp", refuse)
    monkeypatch.setitem(BACKENDS, "seeded-test", "no.such.module")  # starting the backend would crash
    exit_code, err = invoke(monkeypatch, capsys, ["run", *ARGS, "--out", str(tmp_path / "out")])
    assert exit_code == 2
    assert error_line(err) == f"error: --out {tmp_path / 'out'}: cannot write in {tmp_path}: {fix}"
    assert not (tmp_path / "out").exists()


def test_a_real_read_only_file_system(tmp_path):
    """A read-only tmpfs mounted in a private user + mount namespace (skipped where that is not allowed)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    mount = tmp_path / "ro"
    mount.mkdir()
    script = (
        f"mount -t tmpfs -o ro tmpfs {mount} || exit 99; "
        f"exec {sys.executable} -m tests.evalkit.fake_backend run {' '.join(ARGS)} --out {mount}/results"
    )
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, capture_output=True, text=True)
    if done.returncode == 99 or "unshare failed" in done.stderr:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()[:100]}")
    assert done.returncode == 2 and error_line(done.stderr) == (
        f"error: --out {mount}/results: cannot write in {mount}: the file system is read-only; write "
        "somewhere else (e.g. another --out)"
    )


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_every_file_of_a_run_folder_gets_the_mode_open_gives(tmp_path, monkeypatch, capsys, umask):
    previous = os.umask(umask)
    try:
        code, err = invoke(monkeypatch, capsys, ["run", *ARGS, "--out", str(tmp_path / "out")])
        folder = only_folder(tmp_path / "out")
        code2, _ = invoke(monkeypatch, capsys, ["score", str(folder.path), "--workers", "1"])  # rewrites
    finally:
        os.umask(previous)
    assert code == code2 == 0, err
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.path.iterdir()}
    assert {"config.json", "completions.jsonl", "scores.jsonl", "results.json"} <= set(modes)
    assert set(modes.values()) == {0o666 & ~umask}, modes


@pytest.fixture
def finished(tmp_path, monkeypatch, capsys) -> RunFolder:
    code, err = invoke(monkeypatch, capsys, ["run", *ARGS, "--out", str(tmp_path / "out")])
    assert code == 0, err
    return only_folder(tmp_path / "out")


def edit_config(folder: RunFolder, **changes) -> None:
    header = json.loads(folder.config_path.read_text())
    header["config"].update(changes)
    folder.config_path.write_text(json.dumps(header, indent=2))


def test_score_refuses_an_edited_config_naming_the_fields_and_keeps_results(finished, monkeypatch, capsys):
    results = finished.results_path.read_bytes()
    edit_config(finished, seed=5, temperature=1.0)
    code, err = invoke(monkeypatch, capsys, ["score", str(finished.path), "--workers", "1"])
    assert code == 2
    line = error_line(err)
    assert line.startswith(f"error: {finished.config_path} was edited (its config hashes to ")
    assert f"not to its run_id {finished.path.name}" in line
    assert "changed since results.json was written: seed: 0 -> 5, temperature: 0.6 -> 1.0" in line
    assert finished.results_path.read_bytes() == results  # a final results.json is never overwritten


def test_an_edited_config_without_results_and_a_relabelled_run_id_are_refused(finished, monkeypatch, capsys):
    finished.results_path.unlink()
    header = json.loads(finished.config_path.read_text())
    header["config"]["n"] = 2
    header["run_id"] = stable_hash(header["config"])  # they agree again; the folder keeps the old name
    finished.config_path.write_text(json.dumps(header))
    code, err = invoke(monkeypatch, capsys, ["score", str(finished.path), "--workers", "1"])
    assert code == 2 and f"the folder is named {finished.path.name} but its run_id is" in error_line(err)
    # Resuming into it with the edited settings is refused the same way (never relabelled).
    code, err = invoke(monkeypatch, capsys, ["run", *SEEDED, "--n", "2", "--limit", "10", "--max-new-tokens",
                                             "64", "--run-dir", str(finished.path)])  # fmt: skip
    assert code == 2 and "was edited" in error_line(err)
    assert not finished.has_results()
