"""LLMEngine: one prefill per problem forked into n samples, continuous batching, seeded sampling.

Two ways to drive it:

1. Pull (the runner): `engine.generate(items)` takes an iterable of (Request, prompt token ids)
   and yields each finished Sequence. It pulls the next item only when the queued samples cannot fill
   the free slots, so a lazy or endless iterable is fine.
2. Push (a server): `engine.add_request(request, prompt_ids)` from any thread (it only appends to a
   queue), and one loop thread calling `while engine.has_work(): for seq in engine.step(): ...`.
   `add_request` never blocks and `step` never waits for new work, so concurrent HTTP requests join
   the running batch at the next step. Call `step` from one thread only. `abort()` drops all work.
   `engine.stats` (steps, prefills, prompt/generated tokens, tokens_per_second) reports progress.

One `step`: admit new requests; prefill the problems that get a slot (their samples draw their first
token from the prefill logits, each with its own seed); copy each parent state into its samples' slots;
decode one token for every running sample; ONE host sync to learn the new tokens; finish samples that
hit a stop token, a stop string or max_new_tokens, freeing their slots at once.

Sizing: the pool is built on the first step, with `max_seq_len` = the longest queued prompt +
max_new_tokens rounded up to `seq_len_multiple` (or `EngineConfig.max_seq_len`), and `max_slots` slots
(or as many as the measured free CUDA memory allows; `cpu_slots` on CPU). A later request that needs a
longer sequence waits until the running samples drain, then the pool is rebuilt larger: memory stays
flat however many steps run.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch

from model_backends.sambay.engine.model_runner import ModelRunner
from model_backends.sambay.engine.request import Request, SamplingParams
from model_backends.sambay.engine.scheduler import Scheduler
from model_backends.sambay.engine.sequence import Group, Sequence
from model_backends.sambay.errors import ConfigError, EngineError, RequestError


@dataclass(frozen=True)
class EngineConfig:
    max_slots: int | None = None  # None: from the memory budget (CUDA) or `cpu_slots` (CPU)
    max_seq_len: int | None = None  # None: longest queued prompt + max_new_tokens, rounded up
    context_limit: int = 65536  # prompt + max_new_tokens beyond this is refused
    max_prefill_tokens: int = 8192  # prompt tokens per prefill call (the first prompt always fits)
    seq_len_multiple: int = 1024
    cpu_slots: int = 16
    max_memory_slots: int = 1024
    gpu_memory_fraction: float = 0.9
    ignore_stop_tokens: bool = False  # benchmarks: force every sample to max_new_tokens
    cuda_graphs: bool = True  # replay decode steps from CUDA graphs (CUDA + Triton only)


@dataclass
class EngineStats:
    steps: int = 0
    prefills: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / max(time.perf_counter() - self.started, 1e-9)


class LLMEngine:
    def __init__(
        self,
        model: torch.nn.Module,
        config: EngineConfig = EngineConfig(),
        stop_token_ids: Iterable[int] = (),
        detokenize: Callable[[list[int]], str] | None = None,
        state_dtype: torch.dtype | None = None,
    ) -> None:
        self.config = config
        self.runner = ModelRunner(model, state_dtype, cuda_graphs=config.cuda_graphs)
        self.stop_token_ids = frozenset(stop_token_ids)
        self.detokenize = detokenize  # needed only for requests with sampling.stop strings
        self.scheduler: Scheduler | None = None  # built with the pool on the first step
        self.stats = EngineStats()
        self._incoming: deque[Group] = deque()
        self._lock = threading.Lock()
        limit = getattr(model.config, "max_position_embeddings", None)
        self.context_limit = min(config.context_limit, limit) if limit else config.context_limit

    # -- public API -------------------------------------------------------------------------------

    def add_request(
        self,
        request: Request,
        prompt_ids: list[int],
        max_new_tokens: list[int] | None = None,
    ) -> None:
        """Queue one problem (all its sample indices). Thread-safe; never blocks. Raises RequestError for
        an empty or over-long prompt, or a request with stop strings but no detokenizer.

        `max_new_tokens` optionally gives each sample its own limit (benchmarks force fixed lengths this
        way); by default every sample uses `request.sampling.max_new_tokens`."""
        if not prompt_ids:
            raise RequestError(f"request {request.request_id!r}: the prompt is empty (0 tokens)")
        limits = max_new_tokens or [request.sampling.max_new_tokens] * request.n
        if len(limits) != request.n:
            raise ValueError(f"{len(limits)} max_new_tokens for {request.n} samples")
        need = len(prompt_ids) + max(limits)
        if need > self.context_limit:
            raise RequestError(
                f"request {request.request_id!r}: prompt of {len(prompt_ids)} tokens + max_new_tokens "
                f"{max(limits)} exceeds the context limit {self.context_limit}; "
                "lower --max-new-tokens or shorten the prompt"
            )
        if request.sampling.stop and self.detokenize is None:
            raise RequestError("stop strings need a detokenizer: pass detokenize= to LLMEngine")
        prompt = list(prompt_ids)
        seqs = [
            Sequence(request.request_id, index, seed, prompt, _with_limit(request.sampling, limit))
            for index, seed, limit in zip(request.sample_indices, request.seeds, limits, strict=True)
        ]
        with self._lock:
            self._incoming.append(Group(request.request_id, prompt, seqs))

    def has_work(self) -> bool:
        return bool(self._incoming) or (self.scheduler is not None and self.scheduler.has_work())

    def step(self) -> list[Sequence]:
        """Run one scheduling + decode step; return the samples that finished in it."""
        self._admit()
        if self.scheduler is None or not self.scheduler.has_work():
            return []
        prefills, starts = self.scheduler.schedule(self.runner.max_seq_len)
        runner = self.runner
        if prefills:
            logits = runner.prefill([g.prompt_ids for g, _ in prefills], [slot for _, slot in prefills])
            for (group, _), row in zip(prefills, logits, strict=True):
                group.first_logits = row
            self.stats.prefills += len(prefills)
            self.stats.prompt_tokens += sum(len(g.prompt_ids) for g, _ in prefills)
        # Copy parent states before any decode writes into a parent slot taken over by its last sample.
        copies: dict[int, tuple[int, list[int]]] = {}  # parent slot -> (prompt length, sample slots)
        for seq, group, src in starts:
            if src is not None:
                copies.setdefault(src, (len(group.prompt_ids), []))[1].append(seq.slot)
        for src, (length, dsts) in copies.items():
            runner.fork(src, dsts, length)
        old = list(self.scheduler.running)
        new = [seq for seq, _, _ in starts]
        first_tokens = None
        if new:
            first_logits = torch.stack([group.first_logits for _, group, _ in starts])
            first_tokens = runner.sample(first_logits, new, [0] * len(new))
            for _, group, _ in starts:
                if group.parent_slot is None:
                    group.first_logits = None  # no sample of it waits on the parent: drop the [V] row
        batch = old + new
        if not batch:
            return []
        tokens = torch.tensor([s.generated[-1] for s in old], dtype=torch.long, device=runner.device)
        if first_tokens is not None:
            tokens = torch.cat([tokens, first_tokens])
        logits = runner.decode(tokens, [s.slot for s in batch])
        steps = [len(s.generated) for s in old] + [1] * len(new)
        next_tokens = runner.sample(logits, batch, steps)
        # The step's single host sync: the first tokens of new samples, then one token per sample.
        host = torch.cat([first_tokens, next_tokens]).tolist() if new else next_tokens.tolist()
        self.scheduler.activate(new)
        finished = []
        for seq, token in zip(new, host[: len(new)], strict=True):
            if self._append(seq, token):
                finished.append(seq)
        for seq, token in zip(batch, host[len(new) :], strict=True):
            if seq.finish_reason is None and self._append(seq, token):
                finished.append(seq)
        for seq in finished:
            self.scheduler.finish(seq)
        self.stats.steps += 1
        return finished

    def generate(self, items: Iterable[tuple[Request, list[int]]]) -> Iterator[Sequence]:
        """Yield each sample as it finishes; pull the next (request, prompt ids) only when slots would idle."""
        pending = iter(items)
        exhausted = False
        try:
            while True:
                while not exhausted and self._wants_more():
                    try:
                        self.add_request(*next(pending))
                    except StopIteration:
                        exhausted = True
                if not self.has_work():
                    if exhausted:
                        return
                    continue
                yield from self.step()
        finally:
            if not exhausted or self.has_work():
                self.abort()  # abandoned mid-way: its samples must not leak into the next call

    def abort(self) -> None:
        """Drop every queued and running sample and free all slots (the pool itself is kept)."""
        with self._lock:
            self._incoming.clear()
        if self.scheduler is not None:
            self.scheduler = Scheduler(self.scheduler.num_slots, self.config.max_prefill_tokens)

    # -- internals --------------------------------------------------------------------------------

    def _wants_more(self) -> bool:
        if self._incoming:
            return False  # let the next step admit what is queued (and size the pool) first
        if self.scheduler is None:
            return True
        return self.scheduler.num_waiting_samples() < len(self.scheduler.free)

    def _admit(self) -> None:
        with self._lock:
            groups = list(self._incoming)
            self._incoming.clear()
        if self.scheduler is None:
            if not groups:
                return
            self._build(groups, [])
            self.stats = EngineStats()  # tokens/s counts from the first real work
        for group in groups:
            self.scheduler.add(group)
        self._grow_if_needed()

    def _need(self, group: Group) -> int:
        return len(group.prompt_ids) + group.max_new_tokens

    def _grow_if_needed(self) -> None:
        sched = self.scheduler
        if not sched.groups or sched.running or sched.holds_parent():
            return
        if self._need(sched.groups[0]) > self.runner.max_seq_len:
            self._build(list(sched.groups), list(sched.groups))

    def _build(self, queued: list[Group], keep: list[Group]) -> None:
        """(Re)build the pool and the scheduler for the longest queued sequence; no slot is live."""
        cfg = self.config
        if cfg.max_seq_len is not None:
            max_seq_len = max(cfg.max_seq_len, max((self._need(g) for g in queued), default=0))
        else:
            longest = max((self._need(g) for g in queued), default=1)
            max_seq_len = math.ceil(longest / cfg.seq_len_multiple) * cfg.seq_len_multiple
        max_seq_len = min(max_seq_len, self.context_limit)
        self.runner.allocate(self._num_slots(max_seq_len), max_seq_len)
        self.scheduler = Scheduler(self.runner.num_slots, cfg.max_prefill_tokens)
        for group in keep:
            self.scheduler.add(group)

    def _num_slots(self, max_seq_len: int) -> int:
        cfg = self.config
        if cfg.max_slots is not None:
            if cfg.max_slots < 1:
                raise ConfigError(f"--max-slots must be >= 1, got {cfg.max_slots}")
            return cfg.max_slots
        if self.runner.device.type != "cuda":
            return cfg.cpu_slots
        budget = self.runner.free_memory_for_slots(cfg.gpu_memory_fraction, cfg.max_prefill_tokens)
        # one row less than the budget holds: the padded (CUDA graph) decode adds a scratch slot
        slots = min(cfg.max_memory_slots, budget // self.runner.bytes_per_slot(max_seq_len) - 1)
        if slots < 1:
            raise EngineError(
                f"not enough GPU memory for one sequence of {max_seq_len} tokens; "
                "lower --max-new-tokens or free the GPU"
            )
        return int(slots)

    def _append(self, seq: Sequence, token: int) -> bool:
        """Record one generated token; return True when the sample is finished."""
        seq.generated.append(token)
        self.stats.generated_tokens += 1
        reason = None
        if (
            not self.config.ignore_stop_tokens
            and token in self.stop_token_ids
            or seq.sampling.stop
            and self._hits_stop_string(seq)
        ):
            reason = "stop"
        elif len(seq.generated) >= seq.sampling.max_new_tokens:
            reason = "length"
        if reason is not None:
            seq.finish_reason = reason
            seq.finished_at = time.perf_counter()
        return reason is not None

    def _hits_stop_string(self, seq: Sequence) -> bool:
        # Checked every step, so a stop string can only end at the newest token: decoding the last few
        # tokens (at least one character each) suffices.
        window = max(len(s) for s in seq.sampling.stop) + 4
        tail = self.detokenize(seq.generated[-window:])
        for stop in seq.sampling.stop:
            if stop in tail:
                seq.stop_string = stop
                return True
        return False


def _with_limit(sampling: SamplingParams, max_new_tokens: int) -> SamplingParams:
    if sampling.max_new_tokens == max_new_tokens:
        return sampling
    return dataclasses.replace(sampling, max_new_tokens=max_new_tokens)
