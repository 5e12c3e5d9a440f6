"""The hf backend on a tiny random Llama with the project's fixture tokenizer (CPU, fp32)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit.core.errors import BackendError
from evalkit.core.types import GenerationRequest, SamplingParams
from model_backends.registry import BackendOptions, make_backend

QUESTION = ({"role": "user", "content": "What is 3 plus 4?"},)


def make_tiny_llama(folder: Path, max_position_embeddings: int = 256) -> Path:
    """A 2-layer random LlamaForCausalLM saved with the fixture tokenizer and a Phi-style generation_config."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from model_backends.sambay.testing import make_tiny_tokenizer

    tokenizer = make_tiny_tokenizer(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    vocab = tokenizer.get_vocab()
    eos = [vocab["<|end|>"], vocab["<|endoftext|>"]]
    GenerationConfig(eos_token_id=eos, bos_token_id=vocab["<|endoftext|>"]).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def backend(tiny_llama):
    return make_backend("hf", BackendOptions(model=str(tiny_llama)))


def sampling(
    temperature: float = 1.0, top_p: float = 0.9, max_new_tokens: int = 12, stop=()
) -> SamplingParams:
    return SamplingParams(
        temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, stop=tuple(stop)
    )


def run(backend, indices, seeds, params, messages=QUESTION, prompt_text=None) -> dict:
    request = GenerationRequest("q", messages, tuple(indices), tuple(seeds), params, prompt_text=prompt_text)
    out = {c.sample_index: c for c in backend.generate([request])}
    assert sorted(out) == sorted(indices)
    return out


def test_model_info_reports_fp32_cpu_and_the_generation_config_stop_ids(backend):
    info = backend.model_info()
    vocab = backend.tokenizer.get_vocab()
    assert (info["dtype"], info["device"], info["architectures"]) == ("float32", "cpu", ["LlamaForCausalLM"])
    assert set(info["stop_token_ids"]) == {vocab["<|end|>"], vocab["<|endoftext|>"]}


def test_a_sample_depends_only_on_its_seed_not_on_its_batch(backend):
    params = sampling()
    batch = run(backend, [0, 1, 2, 3], [5, 6, 5, 7], params)
    assert batch[0].text == batch[2].text  # same seed, same prompt -> same sample
    assert len({batch[0].text, batch[1].text, batch[3].text}) == 3  # different seeds differ (random model)
    alone = run(backend, [9], [6], params)  # sample index does not matter, the seed does
    assert alone[9].text == batch[1].text
    assert alone[9].num_generated_tokens == batch[1].num_generated_tokens


def test_batch_size_one_gives_the_same_samples(tiny_llama, backend):
    one_by_one = make_backend("hf", BackendOptions(model=str(tiny_llama), extra={"batch_size": 1}))
    params = sampling()
    assert {k: c.text for k, c in run(one_by_one, [0, 1], [11, 12], params).items()} == {
        k: c.text for k, c in run(backend, [0, 1], [11, 12], params).items()
    }


def test_a_cache_that_cannot_fork_falls_back_to_one_sample_at_a_time(tiny_llama, monkeypatch):
    from transformers.cache_utils import Cache

    params = sampling()
    fresh = make_backend("hf", BackendOptions(model=str(tiny_llama)))
    expected = {k: c.text for k, c in run(fresh, [0, 1, 2], [31, 32, 33], params).items()}
    monkeypatch.delattr(Cache, "batch_repeat_interleave")  # as a remote-code cache without it
    fallback = {k: c.text for k, c in run(fresh, [0, 1, 2], [31, 32, 33], params).items()}
    assert fallback == expected and fresh.batch_size == 1


def test_prompt_plus_max_new_tokens_beyond_the_context_is_a_clear_error(backend):
    with pytest.raises(BackendError, match="exceeds the model's context of 256"):
        run(backend, [0], [0], sampling(max_new_tokens=250))


def test_temperature_zero_is_greedy_whatever_the_seed(backend):
    out = run(backend, [0, 1], [1, 2], sampling(temperature=0, top_p=1.0))
    assert out[0].text == out[1].text
    assert out[0].finish_reason == "length" and out[0].num_generated_tokens == 12


def test_stop_string_cuts_the_text_and_finishes_with_stop(backend):
    greedy = run(backend, [0], [0], sampling(temperature=0, top_p=1.0, max_new_tokens=16))[0].text
    ascii_word = next(w for w in greedy.split() if w.isascii() and w.isalnum() and greedy.find(w) > 0)
    out = run(backend, [0], [0], sampling(temperature=0, top_p=1.0, max_new_tokens=16, stop=[ascii_word]))[0]
    assert out.finish_reason == "stop"
    assert out.text == greedy[: greedy.find(ascii_word)]
    assert out.num_generated_tokens < 16


def test_generation_config_eos_stops_and_is_not_in_the_text(tiny_llama, backend, tmp_path):
    import torch

    from model_backends.chat import encode_prompt, render_messages

    prompt = encode_prompt(backend.tokenizer, render_messages(backend.tokenizer, QUESTION))
    with torch.no_grad():
        logits = backend.model(input_ids=torch.tensor([prompt])).logits[0, -1]
    first = int(torch.argmax(logits))
    folder = Path(shutil.copytree(tiny_llama, tmp_path / "eos-model"))
    config = json.loads((folder / "generation_config.json").read_text())
    config["eos_token_id"] = [first]  # greedy decoding's first token is now a stop token
    (folder / "generation_config.json").write_text(json.dumps(config))
    at_once = make_backend("hf", BackendOptions(model=str(folder)))
    out = run(at_once, [0, 1], [3, 4], sampling(temperature=0, top_p=1.0))
    assert [(c.text, c.num_generated_tokens, c.finish_reason) for c in out.values()] == [("", 1, "stop")] * 2


def test_prompt_text_wins_over_messages(backend):
    from model_backends.chat import render_messages

    other = ({"role": "user", "content": "What is 9 times 9?"},)
    params = sampling()
    via_text = run(
        backend, [0], [8], params, messages=QUESTION, prompt_text=render_messages(backend.tokenizer, other)
    )
    via_messages = run(backend, [0], [8], params, messages=other)
    assert via_text[0].text == via_messages[0].text
    assert via_text[0].num_prompt_tokens == via_messages[0].num_prompt_tokens


@pytest.mark.parametrize(
    "options, message",
    [
        (BackendOptions(model=None), "needs --model"),
        (BackendOptions(model="/nonexistent/tiny-model-folder"), "cannot load"),
        (BackendOptions(model="/nonexistent", dtype="float8"), "unknown dtype"),
        (BackendOptions(model="/nonexistent", device="cuda"), "no CUDA"),
    ],
)
def test_construction_failures_are_one_line_backend_errors(options, message):
    import torch

    if options.device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BackendError, match=message) as info:
        make_backend("hf", options)
    assert "\n" not in str(info.value)


def test_evalkit_run_of_the_demo_task_through_the_hf_backend(tiny_llama, tmp_path):
    from typer.testing import CliRunner

    from evalkit.cli import app

    args = ["run", "--backend", "hf", "--model", str(tiny_llama), "--task", "arith-demo", "--n", "2"]
    args += ["--limit", "3", "--max-new-tokens", "16", "--out", str(tmp_path), "--workers", "1"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    (run_dir,) = [p for p in tmp_path.iterdir() if (p / "results.json").exists()]
    records = [json.loads(line) for line in (run_dir / "completions.jsonl").read_text().splitlines()]
    assert sorted((r["problem_id"], r["sample_index"]) for r in records) == [
        (f"arith-{i:03d}", k) for i in range(3) for k in range(2)
    ]
    assert all(
        r["finish_reason"] in ("stop", "length") and 1 <= r["num_generated_tokens"] <= 16 for r in records
    )
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert (config["backend"], config["n"], config["limit"]) == ("hf", 2, 3)
    results = json.loads((run_dir / "results.json").read_text())
    # one checkpoint, one identity: config.json and the backend's provenance name it alike
    assert results["provenance"]["model_info"]["revision"] == config["model_revision"]
    metrics = results["metrics"]
    assert (metrics["num_problems"], metrics["n"], metrics["complete"]) == (3, 2, True)
    # The same command again resumes: nothing is regenerated.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len((run_dir / "completions.jsonl").read_text().splitlines()) == 6
