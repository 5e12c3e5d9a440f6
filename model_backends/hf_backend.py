"""`hf` backend: any transformers `AutoModelForCausalLM`, sampled in a small loop of our own.

Why not `model.generate`: it draws all rows of a batch from one global RNG, so a sample's tokens would
depend on which other samples share its batch. Here each sample owns a `torch.Generator` seeded with its
own seed, and every random draw of that sample comes from it. What holds:

- the random numbers a sample consumes depend only on its seed (never on batch composition or order);
- the prompt is prefilled once (batch 1) and its KV cache copied into the sample rows, so every sample
  starts from bit-identical state;
- the logits of a row are computed in a batch with the request's other live samples; on CPU and in
  fp32 this is in practice bit-identical to running the row alone, but BLAS kernels may pick different
  blockings for different batch sizes, so in bf16 on CUDA a rare near-tie can resolve differently.
  Use `--backend-option batch_size=1` (options.extra["batch_size"]) for strict per-sample isolation.

`--backend-option pack_prompts=true` decodes several prompts' samples in one left-padded batch instead
(model_backends/hf_packed.py): faster when n is small, at the same caveat.

Requests are consumed lazily, one at a time, so `evalkit serve` can feed this backend from a queue.

`preflight(options, sampling)` checks what needs no weights (device, dtype, batch_size, and for a local
folder its config.json context against max_new_tokens; for a GGUF file that it is one) before the model
loads.

`--model` is a Hub id, a checkpoint folder, or a single GGUF file (model_backends/gguf_file.py): then the
tokenizer and the model both come from `from_pretrained(folder, gguf_file=name)`, and the file's content
hash is the model's revision.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from evalkit.core.devices import resolve_device_dtype
from evalkit.core.errors import BackendError
from evalkit.core.identity import content_hash
from evalkit.core.types import Completion, GenerationRequest, SamplingParams
from model_backends.chat import (
    cut_at_stop,
    encode_prompt,
    eos_token_ids,
    prompt_tokens_sha256,
    render_prompt,
)
from model_backends.gguf_file import check_gguf, is_gguf, load_arguments
from model_backends.hf_packed import pack_prompts_of, packed_batches, sample_packed
from model_backends.registry import BackendOptions

DEFAULT_BATCH_SIZE = 16  # samples of one request decoded together
# Where config.json states the context (prompt + generated tokens), by model family.
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def create(options: BackendOptions) -> HFBackend:
    return HFBackend(options)


def batch_size_of(options: BackendOptions) -> int:
    value = options.extra.get("batch_size", DEFAULT_BATCH_SIZE)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BackendError(f"backend option batch_size must be an integer >= 1, got {value!r}")
    return value


def context_limit_of(folder: str | Path) -> int | None:
    """The context a local checkpoint folder's config.json declares (no weights read); None when the
    folder has no config.json or it declares none."""
    config_file = Path(folder) / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the loader says what is wrong with the folder
    for key in CONTEXT_KEYS:
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def preflight(options: BackendOptions, sampling: SamplingParams | None = None) -> None:
    """Before the weights load: --model given, --device/--dtype, batch_size, and max_new_tokens against
    a local checkpoint's declared context."""
    if not options.model:
        raise BackendError("the hf backend needs --model (a Hugging Face id, a local folder or a .gguf file)")
    resolve_device_dtype(options.device, options.dtype)
    batch_size_of(options)
    pack_prompts_of(options.extra)
    if is_gguf(options.model):
        check_gguf(options.model)
        return
    limit = context_limit_of(Path(options.model).expanduser())
    if sampling is not None and limit is not None and sampling.max_new_tokens >= limit:
        raise BackendError(
            f"--max-new-tokens {sampling.max_new_tokens} leaves no room for a prompt: {options.model} "
            f"declares a context of {limit} tokens for prompt + new tokens (config.json); use a value "
            f"below {limit} minus the longest prompt"
        )


class HFBackend:
    name = "hf"

    def __init__(self, options: BackendOptions) -> None:
        import torch
        import transformers

        if not options.model:
            raise BackendError(
                "the hf backend needs --model (a Hugging Face id, a local folder or a .gguf file)"
            )
        self._torch = torch
        self.options = options
        self.device, self.dtype = resolve_device_dtype(options.device, options.dtype)
        self.batch_size = batch_size_of(options)
        self.pack_prompts = pack_prompts_of(options.extra)
        self.gguf = check_gguf(options.model) if is_gguf(options.model) else None
        source, load = options.model, {"trust_remote_code": options.trust_remote_code}
        if self.gguf is not None:
            source, gguf_file = load_arguments(self.gguf)
            load.update(gguf_file)
        else:
            load["revision"] = options.revision  # a Hub revision; a GGUF file is its own revision
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(source, **load)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=self.dtype, **load)
        except (OSError, ValueError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise BackendError(f"hf backend cannot load {options.model!r}: {first_line}") from err
        self.model.to(self.device).eval()
        self.stop_ids = eos_token_ids(self.tokenizer, getattr(self.model, "generation_config", None))
        if not self.stop_ids:
            raise BackendError(f"{options.model}: no eos token in the tokenizer or generation_config")

    def model_info(self) -> dict[str, Any]:
        import transformers

        config = self.model.config
        local = Path(self.options.model).expanduser()
        return {
            "backend": self.name,
            "model": self.options.model,
            # As config.json's model_revision: --revision, else the local checkpoint's content hash.
            "revision": self.options.revision or (content_hash(local) if local.exists() else None),
            "local_path": str(local.resolve()) if local.exists() else None,
            "architectures": self._architectures(),
            "format": "gguf (de-quantized on load)" if self.gguf is not None else "transformers",
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": self.device,
            "stop_token_ids": self.stop_ids,
            "max_context": getattr(config, "max_position_embeddings", None),
            "transformers": transformers.__version__,
            "torch": self._torch.__version__,
            "seeding": "per-sample torch.Generator",
        }

    def _architectures(self) -> list[str]:
        named = list(getattr(self.model.config, "architectures", None) or [])
        if not named and self.gguf is not None:  # a GGUF file's config names none: the class built stands in
            named = [type(self.model).__name__]
        return named

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        """A list (a whole run) has every prompt encoded and checked against the context first, so one
        that does not fit fails before any sample is generated; any other iterable (a serve queue that
        may still be filling) is read lazily."""
        if isinstance(requests, Sequence):
            encoded: Iterable = [(request, self._encode(request)) for request in requests]
            if self.pack_prompts:
                yield from self._generate_packed(encoded)
                return
        else:
            encoded = ((request, self._encode(request)) for request in requests)
        for request, prompt_ids in encoded:
            started = time.perf_counter()
            digest = prompt_tokens_sha256(prompt_ids)
            pairs = list(zip(request.sample_indices, request.seeds, strict=True))
            for lo in range(0, len(pairs), self.batch_size):
                chunk = pairs[lo : lo + self.batch_size]
                for sample_index, result in self._sample_batch(prompt_ids, chunk, request.sampling):
                    text, generated, reason = result
                    yield Completion(
                        request_id=request.request_id,
                        sample_index=sample_index,
                        text=text,
                        num_prompt_tokens=len(prompt_ids),
                        num_generated_tokens=generated,
                        finish_reason=reason,
                        seconds=time.perf_counter() - started,
                        extra={"prompt_tokens_sha256": digest},
                    )

    def _generate_packed(self, encoded: list[tuple[GenerationRequest, list[int]]]) -> Iterator[Completion]:
        """pack_prompts (model_backends/hf_packed.py): several prompts' samples per batch."""
        digests = {request.request_id: prompt_tokens_sha256(ids) for request, ids in encoded}
        for rows in packed_batches(encoded, self.batch_size):
            for row, (text, generated, reason), seconds in sample_packed(self, rows):
                yield Completion(
                    request_id=row.request.request_id,
                    sample_index=row.sample_index,
                    text=text,
                    num_prompt_tokens=len(row.prompt_ids),
                    num_generated_tokens=generated,
                    finish_reason=reason,
                    seconds=seconds,
                    extra={"prompt_tokens_sha256": digests[row.request.request_id]},
                )

    def _encode(self, request: GenerationRequest) -> list[int]:
        prompt_ids = encode_prompt(self.tokenizer, render_prompt(self.tokenizer, request))
        self._check_context(request, len(prompt_ids))
        return prompt_ids

    def _check_context(self, request: GenerationRequest, prompt_tokens: int) -> None:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        need = prompt_tokens + request.sampling.max_new_tokens
        if limit and need > limit:
            raise BackendError(
                f"request {request.request_id!r}: prompt of {prompt_tokens} tokens + max_new_tokens "
                f"{request.sampling.max_new_tokens} exceeds the model's context of {limit}; lower --max-new-tokens"
            )

    def _sample_batch(
        self, prompt_ids: list[int], samples: list[tuple[int, int]], sampling: SamplingParams
    ) -> Iterator[tuple[int, tuple[str, int, str]]]:
        """Decode len(samples) rows from one prefill; yield (sample_index, (text, tokens, reason))."""
        torch = self._torch
        rows = len(samples)
        generators = [torch.Generator(device=self.device).manual_seed(seed) for _, seed in samples]
        tokens: list[list[int]] = [[] for _ in range(rows)]
        live = list(range(rows))  # row numbers still decoding, in cache order
        stop_ids = set(self.stop_ids)
        # inference_mode only around the tensor work: a `with` held across `yield` would leak the mode
        # into the consumer's thread while this generator is suspended.
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([prompt_ids], device=self.device), use_cache=True)
        cache = out.past_key_values
        if rows > 1 and not all(
            hasattr(cache, m) for m in ("batch_repeat_interleave", "batch_select_indices")
        ):
            # A custom (remote-code) cache we can't fork or shrink: decode each sample alone from now on.
            self.batch_size = 1
            for sample in samples:
                yield from self._sample_batch(prompt_ids, [sample], sampling)
            return
        with torch.inference_mode():
            if rows > 1:
                cache.batch_repeat_interleave(rows)
            logits = out.logits[:, -1].float().expand(rows, -1)
        for _step in range(sampling.max_new_tokens):
            with torch.inference_mode():
                next_ids = [self._draw(logits[i], generators[row], sampling) for i, row in enumerate(live)]
            keep: list[int] = []
            finished = []
            for i, row in enumerate(live):
                tokens[row].append(next_ids[i])
                reason = self._finished(tokens[row], stop_ids, sampling)
                if reason is None:
                    keep.append(i)
                else:
                    finished.append((samples[row][0], self._result(tokens[row], stop_ids, sampling, reason)))
            yield from finished
            if not keep:
                return
            with torch.inference_mode():
                if len(keep) < len(live):
                    cache.batch_select_indices(torch.tensor(keep, device=self.device))
                    next_ids = [next_ids[i] for i in keep]
                    live = [live[i] for i in keep]
                step_ids = torch.tensor(next_ids, device=self.device).unsqueeze(1)
                out = self.model(input_ids=step_ids, past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                logits = out.logits[:, -1].float()

    def _draw(self, logits: Any, generator: Any, sampling: SamplingParams) -> int:
        """Greedy at temperature 0, else top-p sampling with this sample's own generator."""
        torch = self._torch
        if sampling.temperature == 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / sampling.temperature, dim=-1)
        if sampling.top_p < 1:
            sorted_probs, order = torch.sort(probs, descending=True)
            before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
            sorted_probs = torch.where(before < sampling.top_p, sorted_probs, torch.zeros_like(sorted_probs))
            choice = torch.multinomial(sorted_probs, 1, generator=generator)
            return int(order[choice])
        return int(torch.multinomial(probs, 1, generator=generator))

    def _finished(self, tokens: list[int], stop_ids: set[int], sampling: SamplingParams) -> str | None:
        if tokens[-1] in stop_ids:
            return "stop"
        if sampling.stop:
            # Checked every step, so a stop string can only end in the newest tokens: decode a short tail
            # (not the whole sample: that would be quadratic in its length).
            window = max(len(stop) for stop in sampling.stop) + 4
            if cut_at_stop(self._decode(tokens[-window:]), sampling.stop).stopped:
                return "stop"
        if len(tokens) >= sampling.max_new_tokens:
            return "length"
        return None

    def _result(
        self, tokens: list[int], stop_ids: set[int], sampling: SamplingParams, reason: str
    ) -> tuple[str, int, str]:
        body = tokens[:-1] if tokens[-1] in stop_ids else tokens  # the stop token is not part of the text
        return cut_at_stop(self._decode(body), sampling.stop).text, len(tokens), reason

    def _decode(self, tokens: list[int]) -> str:
        # As the sambay engine does, so the two backends' texts compare directly.
        return self.tokenizer.decode(tokens, skip_special_tokens=True)
