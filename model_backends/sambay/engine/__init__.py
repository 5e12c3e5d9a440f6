"""The SambaY engine: requests in, finished sequences out (after nano-vllm's engine/).

llm_engine.py (LLMEngine: add_request / step / generate) drives scheduler.py (which samples run, finish
rules) and model_runner.py (the model, its state pool and its sizing; prefill, fork, decode, sampling),
with sequence.py (bookkeeping), sampler.py (seeded on-device sampling) and graphs.py (CUDA graphs).
"""

from model_backends.sambay.engine.llm_engine import EngineConfig, LLMEngine

__all__ = ["EngineConfig", "LLMEngine"]
