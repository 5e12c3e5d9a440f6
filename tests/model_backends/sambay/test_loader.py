"""Checkpoint loading in the real Hugging Face layout, and one clear message per broken checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from model_backends.sambay.errors import EngineError
from model_backends.sambay.model import SambaYForCausalLM, loader
from model_backends.sambay.model.loader import PUBLISHED_REVISION, CheckpointError
from model_backends.sambay.testing import make_tiny_checkpoint

WEIGHTS = "model.safetensors"


@pytest.fixture
def checkpoint(tiny_checkpoint_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the shared tiny checkpoint that a test may break."""
    return Path(shutil.copytree(tiny_checkpoint_dir, tmp_path / "ckpt"))


def _rewrite_weights(folder: Path, edit) -> None:
    tensors = load_file(str(folder / WEIGHTS))
    edit(tensors)
    save_file(tensors, str(folder / WEIGHTS))


def test_loads_every_tensor_and_ties_the_head(tiny_checkpoint_dir):
    model = SambaYForCausalLM.from_pretrained(tiny_checkpoint_dir, dtype=torch.float32)
    stored = load_file(str(tiny_checkpoint_dir / WEIGHTS))
    assert "lm_head.weight" not in stored
    state = model.state_dict()
    assert set(state) == set(stored) | {"lm_head.weight"}
    for name, tensor in stored.items():
        torch.testing.assert_close(state[name], tensor, rtol=0, atol=0)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert not model.training


def test_bf16_load_keeps_a_log_d_and_lambdas_in_fp32(tiny_checkpoint_dir):
    model = SambaYForCausalLM.from_pretrained(tiny_checkpoint_dir, dtype=torch.bfloat16)
    for name, param in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        expected = torch.float32 if leaf in ("A_log", "D") or leaf.startswith("lambda_") else torch.bfloat16
        assert param.dtype == expected, name


def test_sharded_checkpoint_with_index_loads_the_same_model(tiny_checkpoint_dir, checkpoint):
    tensors = load_file(str(checkpoint / WEIGHTS))
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, part in shards.items():
        save_file({n: tensors[n] for n in part}, str(checkpoint / file))
    weight_map = {n: file for file, part in shards.items() for n in part}
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (checkpoint / WEIGHTS).unlink()
    tokens = torch.tensor([[5, 9, 14, 3, 200 % 512, 77]])
    sharded = SambaYForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    single = SambaYForCausalLM.from_pretrained(tiny_checkpoint_dir, dtype=torch.float32)
    torch.testing.assert_close(sharded(tokens), single(tokens), rtol=0, atol=0)


def test_a_stored_tied_head_is_accepted(checkpoint):
    _rewrite_weights(
        checkpoint, lambda t: t.__setitem__("lm_head.weight", t["model.embed_tokens.weight"].clone())
    )
    model = SambaYForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    assert model.lm_head.weight is model.model.embed_tokens.weight


def _drop(name):
    return lambda t: t.pop(name)


def _add(name):
    return lambda t: t.__setitem__(name, torch.zeros(3))


def _reshape(name, shape):
    return lambda t: t.__setitem__(name, torch.zeros(shape))


LAMBDA = "model.layers.3.attn.inner_cross_attn.lambda_q1"
CONV = "model.layers.2.attn.conv1d.weight"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_drop(LAMBDA), rf"1 missing: {LAMBDA}"),
        (
            _add("model.layers.0.attn.critic_head.weight"),
            r"1 unexpected: model\.layers\.0\.attn\.critic_head",
        ),
        (_reshape(CONV, (64, 1, 3)), rf"1 mis-shaped: {CONV} \[64, 1, 3\] \(expected \[64, 1, 4\]\)"),
        (
            lambda t: [_drop(LAMBDA)(t), _add("extra.weight")(t), _reshape(CONV, (2,))(t)],
            r"1 missing: .*lambda_q1; 1 unexpected: extra\.weight; 1 mis-shaped: .*conv1d",
        ),
    ],
    ids=["missing", "unexpected", "mis-shaped", "all-three-in-one-message"],
)
def test_tensor_mismatches_are_listed_in_one_message(checkpoint, edit, message):
    _rewrite_weights(checkpoint, edit)
    with pytest.raises(CheckpointError, match=message) as info:
        SambaYForCausalLM.from_pretrained(checkpoint)
    assert "\n" not in str(info.value)


def _break_config(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 6}))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (_break_config, "num_hidden_layers=6 must be a positive multiple of 4"),
        (
            lambda f: (f / WEIGHTS).write_bytes(b"\x00garbage, not safetensors"),
            r"cannot read .*model\.safetensors",
        ),
        (lambda f: (f / WEIGHTS).unlink(), "has neither model.safetensors nor model.safetensors.index.json"),
        (lambda f: (f / "config.json").unlink(), "has no config.json"),
        (lambda f: (f / "config.json").write_text("{not json"), "cannot read SambaY config"),
        (lambda f: shutil.rmtree(f), "checkpoint folder .* not found"),
    ],
    ids=[
        "L-not-multiple-of-4",
        "unreadable-weights",
        "no-weights",
        "no-config",
        "bad-config-json",
        "no-folder",
    ],
)
def test_broken_checkpoints_fail_clearly(checkpoint, breakage, message):
    breakage(checkpoint)
    with pytest.raises(EngineError, match=message):
        SambaYForCausalLM.from_pretrained(checkpoint)


def test_hub_id_is_pinned_and_offline_failure_says_so(monkeypatch):
    import huggingface_hub

    calls = []

    def offline(repo_id, revision=None, **kwargs):
        calls.append((repo_id, revision))
        raise OSError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CheckpointError, match="without network access.*local folder"):
        loader.load_model("microsoft/Phi-4-mini-flash-reasoning")
    assert calls == [("microsoft/Phi-4-mini-flash-reasoning", PUBLISHED_REVISION)]


def test_make_tiny_checkpoint_honours_overrides(tmp_path):
    folder = make_tiny_checkpoint(
        tmp_path, seed=3, num_hidden_layers=12, hidden_size=64, num_attention_heads=8
    )
    model = SambaYForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert (model.config.num_hidden_layers, model.config.head_dim) == (12, 8)
    assert {p.name for p in folder.iterdir()} >= {
        "config.json",
        WEIGHTS,
        "generation_config.json",
        "tokenizer.json",
    }
