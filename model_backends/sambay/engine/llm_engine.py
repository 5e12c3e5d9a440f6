"""LLMEngine: one prefill per problem forked into n samples, continuous batching, seeded sampling.

Two ways to drive it:

1. Pull (the runner): `engine.generate(items)` takes an iterable of (Request, prompt token ids) and
   yields each finished Sequence. It pulls the next item only when the queued samples cannot fill the
   free slots, so a lazy or endless iterable is fine.
2. Push (a server): `engine.add_request(request, prompt_ids)` from any thread (it only appends to a
   queue), and one loop thread calling `while engine.has_work(): for seq in engine.step(): ...`.
   `add_request` never blocks and `step` never waits for new work, so concurrent HTTP requests join
   the running batch at the next step. Call `step` from one thread only. `abort_request(id)` (any
   thread) drops one request at the next step boundary; `abort()` drops all work.
   `engine.stats` (steps, prefills, prompt/generated tokens, tokens_per_second) reports progress.

One `step`: admit new requests (and apply aborts); `batch = scheduler.schedule()` (which problems to
prefill, which samples start or keep running); `tokens = runner.run(batch)` (prefill, fork, first-token
sampling, one decode for every sample, ONE host sync); `finished = scheduler.postprocess(batch, tokens)`
(stop token, stop string or max_new_tokens; finished samples free their slots at once).

The pool is built on the first step, sized by the runner for the longest queued sequence. A later
request that needs a longer sequence waits until the running samples drain, then the pool is rebuilt
larger: memory stays flat however many steps run.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch

from model_backends.sambay.engine.config import EngineConfig
from model_backends.sambay.engine.model_runner import ModelRunner
from model_backends.sambay.engine.request import Request, SamplingParams
from model_backends.sambay.engine.scheduler import Scheduler, StopRules
from model_backends.sambay.engine.sequence import Group, Sequence
from model_backends.sambay.errors import RequestError


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
        self.runner = ModelRunner(model, config, state_dtype)
        # detokenize is needed only for requests with sampling.stop strings
        self.rules = StopRules(frozenset(stop_token_ids), config.ignore_stop_tokens, detokenize)
        self.scheduler: Scheduler | None = None  # built with the pool on the first step
        self.stats = EngineStats()
        self._incoming: deque[Group] = deque()
        self._aborted: set[str] = set()  # request ids to drop from the scheduler at the next step
        self._lock = threading.Lock()
        self.context_limit = self.runner.context_limit  # prompt + max_new_tokens beyond this is refused

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
        if request.sampling.stop and self.rules.detokenize is None:
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
        batch = self.scheduler.schedule()
        tokens = self.runner.run(batch)
        self.stats.prefills += len(batch.prefills)
        self.stats.prompt_tokens += sum(len(group.prompt_ids) for group, _ in batch.prefills)
        if not batch.decode:
            return []
        finished = self.scheduler.postprocess(batch, tokens)
        self.stats.steps += 1
        self.stats.generated_tokens += batch.generated
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

    def abort_request(self, request_id: str) -> None:
        """Drop every queued and running sample of `request_id`; their slots are free from the next step
        on, and none of them is returned. Other requests are unaffected; an unknown id is ignored.
        Thread-safe (a server's handler may call it while the loop thread steps); samples finishing in
        a step already under way are still returned by that step."""
        with self._lock:
            self._incoming = deque(g for g in self._incoming if g.request_id != request_id)
            self._aborted.add(request_id)

    def abort(self) -> None:
        """Drop every queued and running sample and free all slots (the pool itself is kept)."""
        with self._lock:
            self._incoming.clear()
            self._aborted.clear()
        if self.scheduler is not None:
            self.scheduler = self._new_scheduler()

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
            aborted, self._aborted = self._aborted, set()
        if self.scheduler is None:
            if not groups:
                return
            self._build(groups, [])
            self.stats = EngineStats()  # tokens/s counts from the first real work
        for request_id in aborted:  # before the new groups: a request re-sent after its abort stays
            self.scheduler.abort(request_id)
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
        self.runner.allocate_for(max(self._need(group) for group in queued))
        self.scheduler = self._new_scheduler()
        for group in keep:
            self.scheduler.add(group)

    def _new_scheduler(self) -> Scheduler:
        runner = self.runner
        return Scheduler(runner.num_slots, runner.max_seq_len, self.config.max_prefill_tokens, self.rules)


def _with_limit(sampling: SamplingParams, max_new_tokens: int) -> SamplingParams:
    if sampling.max_new_tokens == max_new_tokens:
        return sampling
    return dataclasses.replace(sampling, max_new_tokens=max_new_tokens)
