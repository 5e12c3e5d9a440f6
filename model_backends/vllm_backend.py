"""`vllm` backend (optional extra: `pip install 'evalkit[vllm]'`): vLLM's offline `LLM` API.

Each sample becomes one prompt with its own `SamplingParams(n=1, seed=<that sample's seed>, ...)`, so a
sample's tokens depend on its seed and not on how many siblings it has (vLLM's per-request seeded
generators), and a resumed run that asks for only the missing sample indices draws the same samples.
Requests are read lazily in chunks of `options.extra["chunk_size"]` (default 256) prompts; vLLM schedules
each chunk with its own continuous batching and the chunk's completions are yielded when it returns.

It cannot run on CPU-only machines. On a CUDA machine with vLLM installed:

    pip install 'evalkit[vllm]'
    evalkit run --backend vllm --model microsoft/Phi-4-mini-reasoning --task aime24 --n 64

The unit test (`tests/model_backends/test_vllm_backend.py`) swaps in a stand-in `vllm` module and checks
the exact arguments passed; it does not run vLLM.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from evalkit.core.errors import BackendError
from evalkit.core.types import Completion, GenerationRequest
from model_backends.chat import prompt_tokens_sha256, render_prompt
from model_backends.registry import BackendOptions

MIN_VLLM = (0, 6)
INSTALL_HINT = "pip install 'evalkit[vllm]'"
DEFAULT_CHUNK_SIZE = 256


def create(options: BackendOptions) -> VLLMBackend:
    return VLLMBackend(options)


def chunk_size_of(options: BackendOptions) -> int:
    value = options.extra.get("chunk_size", DEFAULT_CHUNK_SIZE)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BackendError(f"backend option chunk_size must be an integer >= 1, got {value!r}")
    return value


def preflight(options: BackendOptions, sampling: Any = None) -> None:
    """Before vLLM starts (minutes on a GPU): --model given and the chunk size."""
    if not options.model:
        raise BackendError("the vllm backend needs --model (a Hugging Face id or a local folder)")
    chunk_size_of(options)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def import_vllm() -> Any:
    """The vllm module, or a one-line BackendError saying how to install a recent enough one."""
    try:
        vllm = importlib.import_module("vllm")
    except ImportError as err:
        raise BackendError(f"the vllm backend needs vLLM, which is not installed: {INSTALL_HINT}") from err
    version = getattr(vllm, "__version__", "0")
    if _version_tuple(version) < MIN_VLLM:
        need = ".".join(map(str, MIN_VLLM))
        raise BackendError(f"vLLM {version} is too old (need >= {need}): pip install -U 'evalkit[vllm]'")
    return vllm


class VLLMBackend:
    name = "vllm"

    def __init__(self, options: BackendOptions) -> None:
        if not options.model:
            raise BackendError("the vllm backend needs --model (a Hugging Face id or a local folder)")
        self.options = options
        self._vllm = import_vllm()
        self.chunk_size = chunk_size_of(options)
        engine_args: dict[str, Any] = {
            "model": options.model,
            "revision": options.revision,
            "dtype": options.dtype,
            "trust_remote_code": options.trust_remote_code,
        }
        for key in ("max_model_len", "gpu_memory_utilization", "tensor_parallel_size"):
            if key in options.extra:
                engine_args[key] = options.extra[key]
        self.engine_args = engine_args
        self.llm = self._vllm.LLM(**engine_args)
        self.tokenizer = self.llm.get_tokenizer()

    def model_info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.options.model,
            "revision": self.options.revision,
            "dtype": self.options.dtype,
            "vllm": self._vllm.__version__,
            "engine_args": {k: v for k, v in self.engine_args.items() if k != "model"},
            "seeding": "one SamplingParams(n=1, seed) per sample",
        }

    def sampling_params(self, request: GenerationRequest, seed: int) -> Any:
        s = request.sampling
        return self._vllm.SamplingParams(
            n=1,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_new_tokens,
            seed=seed,
            stop=list(s.stop),
        )

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        iterator = iter(requests)
        while chunk := list(islice(iterator, self.chunk_size)):
            yield from self._generate_chunk(chunk)

    def _generate_chunk(self, chunk: list[GenerationRequest]) -> Iterator[Completion]:
        started = time.perf_counter()
        prompts: list[str] = []
        params: list[Any] = []
        owners: list[tuple[str, int]] = []  # (request_id, sample_index) of each prompt
        for request in chunk:
            prompt = render_prompt(self.tokenizer, request)
            for sample_index, seed in zip(request.sample_indices, request.seeds, strict=True):
                prompts.append(prompt)
                params.append(self.sampling_params(request, seed))
                owners.append((request.request_id, sample_index))
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - started
        for (request_id, sample_index), output in zip(owners, outputs, strict=True):
            sample = output.outputs[0]
            yield Completion(
                request_id=request_id,
                sample_index=sample_index,
                text=sample.text,
                num_prompt_tokens=len(output.prompt_token_ids),
                num_generated_tokens=len(sample.token_ids),
                finish_reason="length" if sample.finish_reason == "length" else "stop",
                seconds=seconds,
                extra={
                    "vllm_finish_reason": sample.finish_reason,
                    "stop_reason": sample.stop_reason,
                    "prompt_tokens_sha256": prompt_tokens_sha256(output.prompt_token_ids),
                },
            )
