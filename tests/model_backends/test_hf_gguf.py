"""`--backend hf --model FILE.gguf`: a tiny llama GGUF written by the test (the `gguf` package) loads through
from_pretrained(folder, gguf_file=...) and gives the samples of the same weights in a folder; the file's
content hash is its revision (hashed once); a missing, unreadable or non-GGUF file is one line before
anything loads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from evalkit.core import identity
from evalkit.core.errors import BackendError
from evalkit.core.identity import content_hash, file_sha256
from evalkit.core.run_folder import RunFolder
from model_backends.registry import BackendOptions, make_backend, preflight
from tests.evalkit.test_cli_run import EVALKIT, cli
from tests.model_backends.test_hf_backend import make_tiny_llama, run, sampling
from tests.model_backends.tiny_gguf import write_tiny_gguf


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def gguf_file(llama_folder, tmp_path_factory) -> Path:
    return write_tiny_gguf(llama_folder, tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


@pytest.fixture(scope="module")
def gguf_backend(gguf_file):
    return make_backend("hf", BackendOptions(model=str(gguf_file)))


def test_a_gguf_file_gives_the_samples_of_the_same_weights_in_a_folder(llama_folder, gguf_backend):
    folder_backend = make_backend("hf", BackendOptions(model=str(llama_folder)))
    for params in (sampling(temperature=0, top_p=1.0), sampling()):
        from_file = {k: c.text for k, c in run(gguf_backend, [0, 1], [3, 4], params).items()}
        assert from_file == {k: c.text for k, c in run(folder_backend, [0, 1], [3, 4], params).items()}
    assert gguf_backend.tokenizer.chat_template == folder_backend.tokenizer.chat_template


def test_model_info_names_the_file_by_its_content_hash(gguf_file, gguf_backend):
    info = gguf_backend.model_info()
    assert info["revision"] == content_hash(gguf_file) == file_sha256(gguf_file)[:16]
    assert info["format"].startswith("gguf") and info["architectures"] == ["LlamaForCausalLM"]
    assert info["local_path"] == str(gguf_file.resolve()) and info["max_context"] == 256


def test_a_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    calls = []
    real = identity.file_sha256
    monkeypatch.setattr(identity, "file_sha256", lambda path: calls.append(path) or real(path))
    file = tmp_path / "model.gguf"
    file.write_bytes(b"GGUF" + bytes(100))
    first = content_hash(file)
    assert content_hash(file) == first and len(calls) == 1
    file.write_bytes(b"GGUF" + bytes(101))
    assert content_hash(file) != first and len(calls) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file; pass the path of a .gguf file"),
        (b"not a gguf file", "is not a GGUF file"),
        (b"", "is not a GGUF file"),
    ],
    ids=["missing", "text", "empty"],
)
def test_preflight_refuses_a_bad_gguf_file_in_one_line(tmp_path, content, message):
    file = tmp_path / "model.gguf"
    if content is not None:
        file.write_bytes(content)
    with pytest.raises(BackendError, match=message) as err:
        preflight("hf", BackendOptions(model=str(file)))
    assert "\n" not in str(err.value)


def test_any_existing_file_must_be_gguf(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"{}")
    with pytest.raises(BackendError, match="is not a GGUF file"):
        preflight("hf", BackendOptions(model=str(file)))


def test_an_unreadable_gguf_file_is_one_line(gguf_file, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(BackendError, match="cannot read it \\(Permission denied\\)"):
        preflight("hf", BackendOptions(model=str(gguf_file)))


def test_a_missing_package_is_named_with_its_install_command(gguf_file, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "accelerate" else real(name)
    )
    with pytest.raises(BackendError, match="needs accelerate: pip install 'accelerate'"):
        preflight("hf", BackendOptions(model=str(gguf_file)))


def test_evalkit_run_of_a_gguf_file_names_it_by_file_and_hash(gguf_file, tmp_path):
    out = tmp_path / "results"
    args = ["--task", "arith-demo", "--limit", "2", "--n", "2", "--max-new-tokens", "6", "--workers", "1"]
    done = cli(EVALKIT, "run", "--backend", "hf", "--model", str(gguf_file), *args, "--out", str(out))
    assert done.returncode == 0, done.stderr
    [folder] = [RunFolder(p) for p in out.iterdir()]
    config = folder.config()
    assert (config.model, config.model_revision) == ("tiny-llama.gguf", content_hash(gguf_file))
    assert folder.results().provenance.model_info["revision"] == config.model_revision
    assert len(folder.completions()) == 4


@pytest.mark.parametrize(
    ("write", "message"),
    [(None, "no such file"), (b"plain text", "is not a GGUF file")],
    ids=["missing", "not-gguf"],
)
def test_evalkit_run_of_a_bad_gguf_file_exits_2_with_one_line(tmp_path, write, message):
    file = tmp_path / "model.gguf"
    if write is not None:
        file.write_bytes(write)
    out = tmp_path / "results"
    done = cli(
        EVALKIT, "run", "--backend", "hf", "--model", str(file), "--task", "arith-demo", "--out", str(out)
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
    assert not out.exists()


def test_a_gguf_path_under_home_is_expanded_for_loading_and_naming(gguf_file, monkeypatch):
    monkeypatch.setenv("HOME", str(gguf_file.parent))
    info = make_backend("hf", BackendOptions(model=f"~/{gguf_file.name}")).model_info()
    assert (info["revision"], info["local_path"]) == (content_hash(gguf_file), str(gguf_file.resolve()))
