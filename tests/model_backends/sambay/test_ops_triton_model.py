"""The whole tiny model and engine on the Triton kernels (under the interpreter) against the reference
ops: every kernel wired in as the layers call it (their strided views, dtypes, the pool), prefill past
the window, decode, the padded CUDA-graph decode path (eager) and the sampler.

TRITON_INTERPRET must be set before triton is first imported, so this runs in a child process: the
file doubles as the worker (`python test_ops_triton_model.py` prints one JSON object of figures).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.model_backends.sambay.interpreter import worker_fixture, worker_main

PROMPTS = [[(7 * i + 3) % 300 + 10 for i in range(13)], [5, 17, 42, 9, 1]]  # window 8: one wraps
DECODE = [[31, 7], [2, 99], [64, 3], [11, 12]]


def _relative(got, want) -> float:
    return float((got - want).abs().max() / want.abs().max())


def _model_logits(model, dtype):
    import torch

    pool = model.new_state_pool(num_slots=3, max_seq_len=32)
    slots = torch.tensor([2, 0])
    out = [model.prefill([torch.tensor(p) for p in PROMPTS], slots, pool)]
    for tokens in DECODE:
        out.append(model.decode(torch.tensor(tokens), slots, pool))
    return out


def _engine_tokens(model):
    from model_backends.sambay.engine import EngineConfig, LLMEngine, Request, SamplingParams

    engine = LLMEngine(model, EngineConfig(max_slots=3))
    engine.runner.padded_eager = True  # the CUDA-graph path's padding and scratch slot
    reqs = [
        Request("a", (0, 1), (11, 12), SamplingParams(temperature=0.0, top_p=0.95, max_new_tokens=9)),
        Request("b", (0, 1, 2), (5, 6, 7), SamplingParams(temperature=1.5, top_p=0.99, max_new_tokens=7)),
    ]
    done = engine.generate(zip(reqs, PROMPTS, strict=True))
    return {f"{s.request_id}{s.sample_index}": s.generated for s in done}


def _worker() -> dict:
    import torch

    from model_backends.sambay.model import SambaYForCausalLM
    from model_backends.sambay.ops.dispatch import Ops
    from model_backends.sambay.testing import make_tiny_checkpoint

    torch.set_num_threads(1)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_tiny_checkpoint(Path(tmp), seed=0)
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            model = SambaYForCausalLM.from_pretrained(folder, dtype=dtype)
            with torch.inference_mode(), model.using_ops(Ops("reference")):
                want = _model_logits(model, dtype)
            with torch.inference_mode(), model.using_ops(Ops("triton")):
                got = _model_logits(model, dtype)
            figures[f"{name}-logits"] = [
                _relative(g.float(), w.float()) for g, w in zip(got, want, strict=True)
            ]
            figures[f"{name}-nan"] = any(bool(g.isnan().any()) for g in got)
        model = SambaYForCausalLM.from_pretrained(folder, dtype=torch.float32)
        with model.using_ops(Ops("reference")):
            figures["engine-reference"] = _engine_tokens(model)
        with model.using_ops(Ops("triton")):
            figures["engine-triton"] = _engine_tokens(model)
    return figures


interpreter_figures = worker_fixture(__file__, timeout=280)


@pytest.mark.parametrize(("dtype", "tolerance"), [("fp32", 1e-4), ("bf16", 5e-2)])
def test_model_on_the_kernels_matches_the_reference_ops(interpreter_figures, dtype: str, tolerance: float):
    errors = interpreter_figures[f"{dtype}-logits"]
    assert not interpreter_figures[f"{dtype}-nan"]
    assert len(errors) == 1 + len(DECODE) and max(errors) < tolerance, errors


def test_engine_on_the_kernels_draws_the_same_tokens(interpreter_figures):
    reference, triton = interpreter_figures["engine-reference"], interpreter_figures["engine-triton"]
    assert sorted(reference) == ["a0", "a1", "b0", "b1", "b2"]
    assert triton == reference
    assert len({tuple(reference[k]) for k in ("b0", "b1", "b2")}) == 3  # hot sampling: distinct samples


if __name__ == "__main__":  # the interpreter worker (see module docstring)
    worker_main(_worker)
