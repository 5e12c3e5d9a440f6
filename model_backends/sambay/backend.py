"""The `sambay` backend: a SambaY checkpoint folder served by the built-in LLMEngine.

This is the one file of `sambay/` that knows evalkit: it turns GenerationRequest into the engine's
Request / SamplingParams, finished engine Sequences into Completions, and the engine's errors
(errors.py) into BackendError with the same one-line message.

`generate(requests)` pulls requests lazily (only when slots would otherwise idle) and yields a
Completion as each sample finishes. A server that must not block on its queue drives the same engine
through `add_request(request)` / `step()` / `has_work()` / `abort(request_id)` (engine/llm_engine.py),
with `render_prompt(messages)` and `context_limit` to check a request before it queues it.

`preflight(options, sampling)` checks what needs no weights (options, device, the checkpoint's
config.json: its model_type and its context limit against max_new_tokens) so the CLI can refuse a
mistake before the model loads; `context_limit_of(folder)` reads that limit.

Options: `options.model` (folder or Hub id), `dtype` (auto = bfloat16 on CUDA, float32 on CPU),
`device` (auto = cuda when available), `max_slots`; `options.extra` may set `max_seq_len`,
`context_limit`, `max_prefill_tokens`, `ignore_stop_tokens`, `cuda_graphs` (EngineConfig fields) and
`ops` (auto | reference | triton; default: EVALKIT_SAMBAY_OPS, read when the backend is built).

Determinism: a sample's tokens depend only on (model, prompt, seed, sampling). On CPU in fp32 this is
exact: prefill runs each prompt alone and decode rows do not interact. On CUDA, matmul kernels may
choose different blockings for different batch sizes, so a near-tie in the logits can resolve
differently in a different batch; the random numbers themselves never depend on the batch.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evalkit.core.devices import resolve_device_dtype
from evalkit.core.errors import BackendError
from evalkit.core.identity import content_hash
from evalkit.core.types import Completion, GenerationRequest, Message
from evalkit.core.types import SamplingParams as RunSampling
from model_backends.chat import cut_at_stop, encode_prompt, prompt_tokens_sha256
from model_backends.registry import BackendOptions
from model_backends.sambay.engine import EngineConfig, LLMEngine, Request, SamplingParams
from model_backends.sambay.engine.config import UNDECLARED_CONTEXT_LIMIT, context_limit
from model_backends.sambay.engine.sequence import Sequence as EngineSequence
from model_backends.sambay.errors import CheckpointError, EngineError
from model_backends.sambay.ops.dispatch import Ops

ENGINE_NAME = "evalkit-sambay"
OPS_ENV = "EVALKIT_SAMBAY_OPS"  # the default ops mode (auto | reference | triton)


def create(options: BackendOptions) -> SambaYBackend:
    return SambaYBackend(options)


def engine_config(options: BackendOptions) -> EngineConfig:
    names = {f.name for f in dataclasses.fields(EngineConfig)}
    unknown = sorted(set(options.extra) - names - {"ops"})
    if unknown:
        raise BackendError(f"unknown sambay backend option(s) {unknown}; known: {sorted(names | {'ops'})}")
    fields = {key: value for key, value in options.extra.items() if key != "ops"}
    return EngineConfig(max_slots=options.max_slots, **fields)


def ops_mode(options: BackendOptions) -> Ops:
    """The ops mode, read when the backend is built (never at import): the `ops` option when the
    caller gives one, else EVALKIT_SAMBAY_OPS, else auto."""
    if "ops" in options.extra:
        return Ops.parse(options.extra["ops"], "sambay option ops")
    return Ops.parse(os.environ.get(OPS_ENV), OPS_ENV)


def context_limit_of(folder: str | Path, configured: int | None = None) -> int:
    """The longest prompt + max_new_tokens the engine will accept for the checkpoint in `folder`, from
    its config.json alone (no weights): max_position_embeddings, lowered by `configured` (the
    context_limit option). Refuses a config.json that is not SambaY's (model_type)."""
    from model_backends.sambay.model.config import SambaYConfig

    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{folder} has no config.json; pass a Hugging Face checkpoint folder")
    return context_limit(configured, SambaYConfig.from_json(config_file).max_position_embeddings)


def preflight(options: BackendOptions, sampling: RunSampling | None = None) -> None:
    """Everything that can be checked before the weights load: --model, --max-slots and the engine
    options, the ops mode, --device/--dtype, and for a local checkpoint its model_type and whether
    max_new_tokens leaves any room for a prompt in its context."""
    if not options.model:
        raise BackendError("the sambay backend needs --model (a SambaY checkpoint folder or Hub id)")
    if options.max_slots is not None and options.max_slots < 1:
        raise BackendError(f"--max-slots must be at least 1, got {options.max_slots}")
    with engine_errors():
        config = engine_config(options)
        ops_mode(options)
        resolve_device_dtype(options.device, options.dtype)
        folder = Path(options.model).expanduser()
        if not folder.is_dir():  # a Hub id: its config.json comes with the download
            return
        limit = context_limit_of(folder, config.context_limit)
    if sampling is not None and sampling.max_new_tokens >= limit:
        raise BackendError(
            f"--max-new-tokens {sampling.max_new_tokens} leaves no room for a prompt: {folder}'s context "
            f"is {limit} tokens for prompt + new tokens (config.json max_position_embeddings, {UNDECLARED_CONTEXT_LIMIT} when "
            f"it declares none); use a value below {limit} minus the longest prompt"
        )


@contextmanager
def engine_errors() -> Iterator[None]:
    """The engine's own errors as evalkit's BackendError, with the same one-line message."""
    try:
        yield
    except EngineError as err:
        raise BackendError(str(err)) from err


def engine_request(request: GenerationRequest) -> Request:
    """evalkit's request (already validated by evalkit) as the engine's own Request."""
    sampling = request.sampling
    with engine_errors():
        return Request(
            request_id=request.request_id,
            sample_indices=tuple(request.sample_indices),
            seeds=tuple(request.seeds),
            sampling=SamplingParams(
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_new_tokens=sampling.max_new_tokens,
                stop=tuple(sampling.stop),
            ),
        )


class SambaYBackend:
    """The Backend protocol over LLMEngine, plus what a server needs: the push API (`add_request`,
    `step`, `has_work`, `abort`), `render_prompt` and `context_limit`. `describe()` is the one-line
    start-up message (ops path, device, dtype) for the CLI to print; the backend itself prints nothing."""

    name = "sambay"

    @engine_errors()
    def __init__(self, options: BackendOptions) -> None:
        import torch

        from model_backends.sambay.model import SambaYForCausalLM
        from model_backends.sambay.model.loader import resolve_checkpoint
        from model_backends.sambay.model.tokenizer import load_tokenizer, stop_token_ids

        if not options.model:
            raise BackendError("the sambay backend needs --model (a SambaY checkpoint folder or Hub id)")
        self.options = options
        self.path = resolve_checkpoint(options.model, options.revision)
        self.device, self.dtype = resolve_device_dtype(options.device, options.dtype)
        self.model = SambaYForCausalLM.from_pretrained(
            self.path, dtype=self.dtype, device=self.device, ops=ops_mode(options)
        )
        self.tokenizer = load_tokenizer(self.path)
        self.stop_ids = stop_token_ids(self.path, self.tokenizer)
        self.engine = LLMEngine(
            self.model,
            engine_config(options),
            stop_token_ids=self.stop_ids,
            detokenize=self.detokenize,
        )
        self._torch_version = torch.__version__
        self.ops_path = self._ops_path()

    def _ops_path(self) -> str:
        path = self.model.ops.describe(self.device)
        mode = self.engine.runner.graph_mode
        if mode == "capture":
            return f"{path} + CUDA graphs"
        if self.device.startswith("cuda") and path == "Triton kernels":
            return f"{path}, eager decode (cuda_graphs off)"
        return path

    def describe(self) -> str:
        """One line for users at start-up: which ops run, on which device, in which dtype."""
        return f"sambay: {self.ops_path} on {self.device}, {str(self.dtype).removeprefix('torch.')}"

    @property
    def context_limit(self) -> int:
        """The longest prompt + max_new_tokens the engine accepts: the checkpoint's declared context
        (config.json max_position_embeddings), lowered by the `context_limit` option."""
        return self.engine.context_limit

    # -- Backend protocol -------------------------------------------------------------------------

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        """A list (a whole run) has every prompt encoded and checked against the context first, so one
        that does not fit fails before any sample is generated; any other iterable is read lazily."""
        if isinstance(requests, Sequence):
            items: Iterable = [self._fitting(request) for request in requests]
        else:
            items = ((engine_request(request), self.encode(request)) for request in requests)
        with engine_errors():
            for seq in self.engine.generate(items):
                yield self.completion(seq)

    def model_info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "engine": ENGINE_NAME,
            "model": self.options.model,
            "path": str(self.path.resolve()),
            "revision": self.options.revision or content_hash(self.path),
            "content_hash": content_hash(self.path),
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": self.device,
            "torch": self._torch_version,
            "ops": self.ops_path,
            "stop_token_ids": self.stop_ids,
            "engine_config": dataclasses.asdict(self.engine.config),
            "max_context": self.context_limit,  # as the hf backend records it (serve reads it too)
            # evalkit 0.1.0 drew by inverse CDF in sorted order; since 0.2 (same seeds, other tokens):
            "seeding": "splitmix64(seed, step) uniform; inverse CDF in vocabulary order over the "
            "tie-inclusive top-p nucleus, on device (sampler v2)",
        }

    def _fitting(self, request: GenerationRequest) -> tuple[Request, list[int]]:
        ids = self.encode(request)
        need = len(ids) + request.sampling.max_new_tokens
        if need > self.context_limit:
            raise BackendError(
                f"request {request.request_id!r}: prompt of {len(ids)} tokens + max_new_tokens "
                f"{request.sampling.max_new_tokens} exceeds the context limit {self.context_limit}; lower "
                "--max-new-tokens (found before any sample was generated)"
            )
        return engine_request(request), ids

    # -- push API for servers ---------------------------------------------------------------------

    def add_request(self, request: GenerationRequest) -> None:
        """Tokenize and queue a request without blocking (thread-safe)."""
        with engine_errors():
            self.engine.add_request(engine_request(request), self.encode(request))

    def step(self) -> list[Completion]:
        """One engine step; the samples that finished in it. Call from one thread."""
        with engine_errors():
            finished = self.engine.step()
        return [self.completion(seq) for seq in finished]

    def has_work(self) -> bool:
        return self.engine.has_work()

    def abort(self, request_id: str) -> None:
        """Drop the queued and running samples of one request (thread-safe); their slots are free from
        the next step on and none of them is returned. Other requests are unaffected."""
        self.engine.abort_request(request_id)

    # -- helpers ----------------------------------------------------------------------------------

    def render_prompt(self, messages: Sequence[Message]) -> str:
        """The prompt text `run` sends for chat messages: the checkpoint's chat template with the
        generation prompt, else the plain Phi format (<|role|>content<|end|>...<|assistant|>)."""
        from model_backends.sambay.model.tokenizer import render_chat

        return render_chat(self.tokenizer, messages)

    def encode(self, request: GenerationRequest) -> list[int]:
        """Prompt token ids: `prompt_text` when given, else the rendered messages."""
        prompt = (
            request.prompt_text if request.prompt_text is not None else self.render_prompt(request.messages)
        )
        return encode_prompt(self.tokenizer, prompt)

    def detokenize(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def completion(self, seq: EngineSequence) -> Completion:
        text = self.detokenize(seq.generated)
        if seq.stop_string is not None:
            text = cut_at_stop(text, seq.sampling.stop).text
        stats = self.engine.stats
        return Completion(
            request_id=seq.request_id,
            sample_index=seq.sample_index,
            text=text,
            num_prompt_tokens=seq.num_prompt_tokens,
            num_generated_tokens=seq.num_generated_tokens,
            finish_reason=seq.finish_reason,
            seconds=seq.seconds,
            extra={
                "seed": seq.seed,
                "engine_tokens_per_second": round(stats.tokens_per_second, 2),
                "prompt_tokens_sha256": prompt_tokens_sha256(seq.prompt_ids),
            },
        )
