"""One model identity: the content hash of a checkpoint folder or file, the same in config.json and in
every backend's model_info; and the data fingerprint."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from evalkit.core.identity import content_hash, data_fingerprint
from evalkit.core.types import Problem
from evalkit.planning import model_identity


def _checkpoint(folder, hidden=8, weights=16):
    folder.mkdir()
    (folder / "config.json").write_text(f'{{"hidden": {hidden}}}')
    header = b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * weights)
    return folder


def test_a_folder_is_named_by_its_content_not_its_path(tmp_path):
    first = _checkpoint(tmp_path / "a")
    copy = tmp_path / "elsewhere" / "b"
    shutil.copytree(first, copy)
    assert content_hash(first) == content_hash(copy)
    assert len(content_hash(first)) == 16 and int(content_hash(first), 16) != 0


@pytest.mark.parametrize(
    "change",
    ["config", "weight size", "header", "generation config"],
)
def test_every_identifying_part_changes_the_hash(tmp_path, change):
    folder = _checkpoint(tmp_path / "m")
    before = content_hash(folder)
    if change == "config":
        (folder / "config.json").write_text('{"hidden": 16}')
    elif change == "weight size":
        _checkpoint(tmp_path / "n", weights=32)
        folder = tmp_path / "n"
    elif change == "header":
        data = (folder / "model.safetensors").read_bytes().replace(b"[4]", b"[2]")
        (folder / "model.safetensors").write_bytes(data)
    else:
        (folder / "generation_config.json").write_text('{"eos_token_id": 2}')
    assert content_hash(folder) != before


def test_weights_are_not_read(tmp_path):
    """Same headers and sizes, other weight bytes: same name (hashing never reads gigabytes)."""
    folder = _checkpoint(tmp_path / "m")
    before = content_hash(folder)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] = 7
    (folder / "model.safetensors").write_bytes(bytes(data))
    assert content_hash(folder) == before


def test_a_file_is_named_by_the_sha256_of_its_bytes(tmp_path):
    path = tmp_path / "outputs.jsonl"
    path.write_bytes(b'{"problem_id": "a", "sample_index": 0, "text": "x"}\n')
    assert content_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_sambay_model_info_revision_is_the_configs_model_revision(tiny_checkpoint_dir):
    from model_backends.registry import BackendOptions, make_backend

    _, revision = model_identity("sambay", str(tiny_checkpoint_dir), None, None)
    backend = make_backend("sambay", BackendOptions(model=str(tiny_checkpoint_dir), device="cpu"))
    info = backend.model_info()
    assert info["revision"] == info["content_hash"] == revision == content_hash(tiny_checkpoint_dir)


def test_data_fingerprint_is_order_and_content_sensitive():
    a = Problem("a", ({"role": "user", "content": "1+1"},), "2", "integer")
    b = Problem("b", ({"role": "user", "content": "2+2"},), "4", "integer")
    base = data_fingerprint([a, b])
    assert len(base) == 64
    assert data_fingerprint([b, a]) != base
    assert data_fingerprint([a, Problem("b", b.messages, "5", "integer")]) != base
    assert data_fingerprint([a, b]) == base
