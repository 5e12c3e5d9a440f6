"""Tokenizer, chat prompt and stop tokens of a checkpoint folder (sambay.md 6)."""

from __future__ import annotations

import json

import pytest

from model_backends.sambay.errors import CheckpointError
from model_backends.sambay.model.tokenizer import load_tokenizer, render_chat, stop_token_ids
from model_backends.sambay.testing import SPECIAL_TOKENS


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint_dir):
    return load_tokenizer(tiny_checkpoint_dir)


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "user", "content": "What is 2 plus 2?"}], "<|user|>What is 2 plus 2?<|end|><|assistant|>"),
        (
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1 + 1"}],
            "<|system|>Be brief.<|end|><|user|>1 + 1<|end|><|assistant|>",
        ),
    ],
)
def test_render_chat_uses_the_template_with_a_generation_prompt(tokenizer, messages, expected):
    assert render_chat(tokenizer, messages) == expected


def test_render_chat_falls_back_to_the_phi_format(tiny_checkpoint_dir):
    bare = load_tokenizer(tiny_checkpoint_dir)
    bare.chat_template = None
    assert (
        render_chat(bare, [{"role": "user", "content": "3 times 4"}])
        == "<|user|>3 times 4<|end|><|assistant|>"
    )


def test_special_tokens_are_single_ids_and_round_trip(tokenizer):
    vocab = tokenizer.get_vocab()
    text = render_chat(tokenizer, [{"role": "user", "content": "Solve 12 * 7 = ?"}])
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert ids[0] == vocab["<|user|>"] and ids[-2:] == [vocab["<|end|>"], vocab["<|assistant|>"]]
    assert tokenizer.decode(ids) == text
    assert all(token in vocab for token in SPECIAL_TOKENS)
    assert len(tokenizer) <= 512  # fits the tiny config's vocab_size


def test_stop_tokens_come_from_generation_config_not_config_json(tiny_checkpoint_dir, tokenizer):
    vocab = tokenizer.get_vocab()
    config = json.loads((tiny_checkpoint_dir / "config.json").read_text())
    stops = stop_token_ids(tiny_checkpoint_dir, tokenizer)
    assert stops == [vocab["<|end|>"], vocab["<|endoftext|>"]]
    assert config["eos_token_id"] not in stops or config["eos_token_id"] == vocab["<|end|>"]


def test_stop_tokens_without_generation_config(tmp_path, tokenizer):
    vocab = tokenizer.get_vocab()
    assert stop_token_ids(tmp_path, tokenizer) == [vocab["<|end|>"], vocab["<|endoftext|>"]]


def test_missing_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="cannot load a tokenizer"):
        load_tokenizer(tmp_path)
