"""The vllm backend cannot run here (no CUDA, no vLLM): these tests swap in a stand-in `vllm` module and
check the exact arguments the backend would pass and how it maps vLLM's outputs back."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

from evalkit.core.errors import BackendError
from evalkit.core.types import GenerationRequest, SamplingParams
from model_backends.registry import BackendOptions, make_backend


@dataclass
class StandInSamplingParams:
    n: int
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    stop: list


@dataclass
class StandInTokenizer:
    chat_template: str = "x"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert not tokenize and add_generation_prompt
        return "|".join(m["content"] for m in messages) + "|assistant:"


@dataclass
class StandInLLM:
    kwargs: dict
    calls: list = field(default_factory=list)

    def get_tokenizer(self):
        return StandInTokenizer()

    def generate(self, prompts, params, use_tqdm):
        self.calls.append((list(prompts), list(params)))
        outputs = []
        for prompt, p in zip(prompts, params, strict=True):
            sample = types.SimpleNamespace(
                text=f"{prompt}#{p.seed}",
                token_ids=list(range(p.max_tokens if p.seed % 2 else 2)),
                finish_reason="length" if p.seed % 2 else "stop",
                stop_reason=None,
            )
            outputs.append(types.SimpleNamespace(prompt_token_ids=[1, 2, 3], outputs=[sample]))
        return outputs


def install_stand_in(monkeypatch, version: str = "0.10.2") -> types.ModuleType:
    module = types.ModuleType("vllm")
    module.__version__ = version
    module.SamplingParams = StandInSamplingParams
    module.instances = []

    def make_llm(**kwargs):
        llm = StandInLLM(kwargs)
        module.instances.append(llm)
        return llm

    module.LLM = make_llm
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def test_vllm_backend_passes_exact_sampling_args_to_a_stand_in_LLM(monkeypatch):  # noqa: N802
    vllm = install_stand_in(monkeypatch)
    options = BackendOptions(
        model="org/model", revision="abc", dtype="bfloat16", extra={"chunk_size": 2, "max_model_len": 4096}
    )
    backend = make_backend("vllm", options)
    assert vllm.instances[0].kwargs == {
        "model": "org/model",
        "revision": "abc",
        "dtype": "bfloat16",
        "trust_remote_code": False,
        "max_model_len": 4096,
    }
    sampling = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=5, stop=("</s>",))
    reqs = [
        GenerationRequest("a", ({"role": "user", "content": "qa"},), (0, 3), (10, 13), sampling),
        GenerationRequest("b", (), (1,), (21,), sampling, prompt_text="raw b"),
        GenerationRequest("c", ({"role": "user", "content": "qc"},), (0,), (30,), sampling),
    ]
    completions = list(backend.generate(reqs))
    calls = vllm.instances[0].calls
    assert [prompts for prompts, _ in calls] == [
        ["qa|assistant:", "qa|assistant:", "raw b"],
        ["qc|assistant:"],
    ]
    assert calls[0][1] == [
        StandInSamplingParams(n=1, temperature=0.6, top_p=0.95, max_tokens=5, seed=10, stop=["</s>"]),
        StandInSamplingParams(n=1, temperature=0.6, top_p=0.95, max_tokens=5, seed=13, stop=["</s>"]),
        StandInSamplingParams(n=1, temperature=0.6, top_p=0.95, max_tokens=5, seed=21, stop=["</s>"]),
    ]
    got = [
        (c.request_id, c.sample_index, c.text, c.num_generated_tokens, c.finish_reason) for c in completions
    ]
    assert got == [
        ("a", 0, "qa|assistant:#10", 2, "stop"),
        ("a", 3, "qa|assistant:#13", 5, "length"),
        ("b", 1, "raw b#21", 5, "length"),
        ("c", 0, "qc|assistant:#30", 2, "stop"),
    ]
    assert all(c.num_prompt_tokens == 3 for c in completions)
    assert backend.model_info()["vllm"] == "0.10.2"


def test_missing_vllm_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(BackendError, match=r"pip install 'evalkit\[vllm\]'"):
        make_backend("vllm", BackendOptions(model="m"))


@pytest.mark.parametrize("version", ["0.5.4", "0.1", "0.5.9.post1"])
def test_too_old_vllm_is_refused(monkeypatch, version):
    install_stand_in(monkeypatch, version)
    with pytest.raises(BackendError, match=f"vLLM {version} is too old"):
        make_backend("vllm", BackendOptions(model="m"))


@pytest.mark.parametrize("version", ["0.6.0", "0.10.2", "1.0.0rc1"])
def test_recent_vllm_is_accepted(monkeypatch, version):
    install_stand_in(monkeypatch, version)
    assert make_backend("vllm", BackendOptions(model="m")).model_info()["vllm"] == version
