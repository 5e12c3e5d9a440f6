"""The SambaY engine: requests in, finished sequences out (shaped after nano-vllm's engine/).

request.py      Request, SamplingParams: what a caller hands in (validated here)
llm_engine.py   LLMEngine: add_request / step / generate / abort_request; one step is
                scheduler.schedule() -> runner.run(batch) -> scheduler.postprocess(batch, tokens)
scheduler.py    which problems to prefill and which samples run this step; finish rules, slot freeing
model_runner.py the model and its slot pool (sized here); prefill, fork, first-token sampling, decode
sequence.py     Sequence (one sample) and Group (one prompt's samples) bookkeeping
sampler.py      seeded on-device top-p sampling
graphs.py       decode steps replayed from CUDA graphs
"""

from model_backends.sambay.engine.config import EngineConfig
from model_backends.sambay.engine.llm_engine import LLMEngine
from model_backends.sambay.engine.request import Request, SamplingParams

__all__ = ["EngineConfig", "LLMEngine", "Request", "SamplingParams"]
