"""The `sambay` backend: a SambaY checkpoint folder served by the built-in LLMEngine.

`generate(requests)` pulls requests lazily (only when slots would otherwise idle) and yields a
Completion as each sample finishes. A server that must not block on its queue drives the same engine
through `add_request(request)` / `step()` / `has_work()` (see model_backends/sambay/engine.py).

Options: `options.model` (folder or Hub id), `dtype` (auto = bfloat16 on CUDA, float32 on CPU),
`device` (auto = cuda when available), `max_slots`; `options.extra` may set `max_seq_len`,
`context_limit`, `max_prefill_tokens` and `ignore_stop_tokens` (EngineConfig fields).

Determinism: a sample's tokens depend only on (model, prompt, seed, sampling). On CPU in fp32 this is
exact: prefill runs each prompt alone and decode rows do not interact. On CUDA, matmul kernels may
choose different blockings for different batch sizes, so a near-tie in the logits can resolve
differently in a different batch; the random numbers themselves never depend on the batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from evalkit.types import BackendError, Completion, GenerationRequest
from model_backends.chat import cut_at_stop, encode_prompt
from model_backends.registry import BackendOptions
from model_backends.sambay.engine import EngineConfig, LLMEngine
from model_backends.sambay.sequence import Sequence

ENGINE_NAME = "evalkit-sambay"


def create(options: BackendOptions) -> SambaYBackend:
    return SambaYBackend(options)


def resolve_device_dtype(device: str, dtype: str) -> tuple[str, Any]:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"--device {device} asked for, but torch sees no CUDA GPU; use --device cpu")
    if dtype == "auto":
        return device, torch.bfloat16 if device.startswith("cuda") else torch.float32
    table = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if dtype not in table:
        raise BackendError(f"unknown dtype {dtype!r}; choose auto, bfloat16, float16 or float32")
    return device, table[dtype]


def engine_config(options: BackendOptions) -> EngineConfig:
    names = {f.name for f in dataclasses.fields(EngineConfig)}
    unknown = sorted(set(options.extra) - names)
    if unknown:
        raise BackendError(f"unknown sambay backend option(s) {unknown}; known: {sorted(names)}")
    return EngineConfig(max_slots=options.max_slots, **options.extra)


def checkpoint_hash(folder: Path) -> str:
    """sha256 of config.json and every safetensors header (names, dtypes, shapes, offsets): cheap, and it
    changes whenever the architecture or the tensor layout does."""
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for file in sorted(folder.glob("*.safetensors")):
        with file.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            digest.update(file.name.encode() + handle.read(size))
    return digest.hexdigest()[:16]


class SambaYBackend:
    name = "sambay"

    def __init__(self, options: BackendOptions) -> None:
        import torch

        from model_backends.sambay.loader import resolve_checkpoint
        from model_backends.sambay.model import SambaYForCausalLM
        from model_backends.sambay.tokenizer import load_tokenizer, stop_token_ids

        if not options.model:
            raise BackendError("the sambay backend needs --model (a SambaY checkpoint folder or Hub id)")
        self.options = options
        self.path = resolve_checkpoint(options.model, options.revision)
        self.device, self.dtype = resolve_device_dtype(options.device, options.dtype)
        self.model = SambaYForCausalLM.from_pretrained(self.path, dtype=self.dtype, device=self.device)
        self.tokenizer = load_tokenizer(self.path)
        self.stop_ids = stop_token_ids(self.path, self.tokenizer)
        self.engine = LLMEngine(
            self.model,
            engine_config(options),
            stop_token_ids=self.stop_ids,
            detokenize=self.detokenize,
        )
        self.on_progress: Callable[[dict[str, float]], None] | None = None  # called per finished sample
        self._torch_version = torch.__version__
        self.ops_path = self._ops_path()
        print(
            f"sambay: {self.ops_path} on {self.device}, {str(self.dtype).removeprefix('torch.')}",
            file=sys.stderr,
        )

    def _ops_path(self) -> str:
        from model_backends.sambay.ops.dispatch import describe_path

        path = describe_path(self.device)
        mode = self.engine.runner.graph_mode
        if mode == "capture":
            return f"{path} + CUDA graphs"
        if self.device.startswith("cuda") and path == "Triton kernels":
            return f"{path}, eager decode (cuda_graphs off)"
        return path

    # -- Backend protocol -------------------------------------------------------------------------

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        items = ((request, self.encode(request)) for request in requests)
        for seq in self.engine.generate(items):
            yield self.completion(seq)

    def model_info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "engine": ENGINE_NAME,
            "model": self.options.model,
            "path": str(self.path.resolve()),
            "revision": self.options.revision or checkpoint_hash(self.path),
            "content_hash": checkpoint_hash(self.path),
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": self.device,
            "torch": self._torch_version,
            "ops": self.ops_path,
            "stop_token_ids": self.stop_ids,
            "engine_config": dataclasses.asdict(self.engine.config),
            # evalkit 0.1.0 drew by inverse CDF in sorted order; since 0.2 (same seeds, other tokens):
            "seeding": "splitmix64(seed, step) uniform; inverse CDF in vocabulary order over the "
            "tie-inclusive top-p nucleus, on device (sampler v2)",
        }

    # -- push API for servers ---------------------------------------------------------------------

    def add_request(self, request: GenerationRequest) -> None:
        """Tokenize and queue a request without blocking (thread-safe)."""
        self.engine.add_request(request, self.encode(request))

    def step(self) -> list[Completion]:
        """One engine step; the samples that finished in it. Call from one thread."""
        return [self.completion(seq) for seq in self.engine.step()]

    def has_work(self) -> bool:
        return self.engine.has_work()

    # -- helpers ----------------------------------------------------------------------------------

    def encode(self, request: GenerationRequest) -> list[int]:
        from model_backends.sambay.tokenizer import render_chat

        if request.prompt_text is not None:
            prompt = request.prompt_text
        else:
            prompt = render_chat(self.tokenizer, request.messages)
        return encode_prompt(self.tokenizer, prompt)

    def detokenize(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def completion(self, seq: Sequence) -> Completion:
        text = self.detokenize(seq.generated)
        if seq.stop_string is not None:
            text = cut_at_stop(text, seq.sampling.stop).text
        stats = self.engine.stats
        progress = {
            "tokens_per_second": stats.tokens_per_second,
            "generated_tokens": float(stats.generated_tokens),
            "steps": float(stats.steps),
        }
        if self.on_progress is not None:
            self.on_progress(progress)
        return Completion(
            request_id=seq.request_id,
            sample_index=seq.sample_index,
            text=text,
            num_prompt_tokens=seq.num_prompt_tokens,
            num_generated_tokens=seq.num_generated_tokens,
            finish_reason=seq.finish_reason,
            seconds=seq.seconds,
            extra={"seed": seq.seed, "engine_tokens_per_second": round(stats.tokens_per_second, 2)},
        )

    # -- serve seams (seams.md 2; minimal versions, the engine branch owns the final ones) ---------

    @property
    def context_limit(self) -> int:
        """Prompt + generated tokens one sample may use: the engine's limit from the checkpoint config."""
        return int(self.engine.context_limit)

    def render_prompt(self, messages: Iterable[dict[str, str]]) -> str:
        """The chat prompt text the run path generates from (the same template as `encode`)."""
        from model_backends.sambay.tokenizer import render_chat

        return render_chat(self.tokenizer, list(messages))
