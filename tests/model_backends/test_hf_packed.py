"""pack_prompts: several prompts' samples decoded as one left-padded batch give the samples each prompt
gives alone (tiny random Llama, CPU fp32)."""

from __future__ import annotations

import pytest

from evalkit.core.errors import BackendError
from evalkit.core.types import GenerationRequest
from model_backends.registry import BackendOptions, make_backend, preflight
from tests.model_backends.test_hf_backend import make_tiny_llama, sampling

# Prompts of different lengths, so the shorter ones are padded.
QUESTIONS = (
    "What is 3 plus 4?",
    "A train travels at 60 kilometers per hour for 3 hours. How far does it go?",
    "Add 1.",
)


def requests(params, n: int = 2) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            f"q{i}",
            ({"role": "user", "content": text},),
            tuple(range(n)),
            tuple(100 * i + s for s in range(n)),
            params,
        )
        for i, text in enumerate(QUESTIONS)
    ]


def texts(backend, batch) -> dict:
    return {(c.request_id, c.sample_index): (c.text, c.num_generated_tokens) for c in backend.generate(batch)}


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def backend(tiny_llama):
    return make_backend("hf", BackendOptions(model=str(tiny_llama)))


@pytest.fixture(scope="module")
def packed(tiny_llama):
    return make_backend("hf", BackendOptions(model=str(tiny_llama), extra={"pack_prompts": True}))


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_packed_batches_give_each_prompts_own_samples(backend, packed, temperature):
    params = sampling(temperature=temperature, top_p=0.9 if temperature else 1.0, max_new_tokens=10)
    alone = texts(backend, requests(params))
    together = texts(packed, requests(params))
    assert sorted(together) == sorted(alone) and len(together) == 6
    assert together == alone
    if temperature:  # the seeds matter: the samples of one prompt differ
        assert alone[("q0", 0)] != alone[("q0", 1)]


def test_a_batch_smaller_than_the_rows_cuts_across_prompts(tiny_llama, backend):
    small = make_backend(
        "hf", BackendOptions(model=str(tiny_llama), extra={"pack_prompts": True, "batch_size": 4})
    )
    params = sampling(max_new_tokens=8)
    assert texts(small, requests(params, n=3)) == texts(backend, requests(params, n=3))


def test_pack_prompts_must_be_a_boolean(tiny_llama):
    with pytest.raises(BackendError, match="pack_prompts must be true or false"):
        preflight("hf", BackendOptions(model=str(tiny_llama), extra={"pack_prompts": "yes"}))
