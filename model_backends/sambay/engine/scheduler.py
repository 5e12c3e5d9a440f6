"""Which problems to prefill and which samples to run each step (`schedule`), and what their new tokens
mean (`postprocess`: the finish rules, freeing slots).

Policy (first come, first served):
- a problem (Group) is prefilled ONCE into a parent slot; each of its samples starts by copying the
  parent's state into a free slot, and the LAST sample to start takes the parent slot itself (no copy);
- when a problem needs more samples than there are free slots, its parent slot stays alive (idle) and
  the remaining samples start as running samples finish. Keeping the parent costs one idle slot for one
  problem at a time; re-prefilling instead would cost a full prompt forward per part (a 2K-token prompt
  is ~2K decode steps of one sample) and would make later samples depend on a second prefill;
- only one problem at a time may hold a parent with samples still waiting: later problems are not
  prefilled until it has started all its samples, so idle parent slots never pile up;
- if nothing is running and no slot is free (a single-slot pool), the next sample takes the parent slot
  and the rest of its problem is prefilled again later: correctness over speed in a degenerate case;
- a finished (or aborted) sample frees its slot at once; the next `schedule` hands it out.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from model_backends.sambay.engine.sequence import Group, Sequence, Status

Start = tuple[Sequence, Group, int | None]  # (sample, its problem, slot to copy its state from)


@dataclass
class Batch:
    """One step's work: made by `Scheduler.schedule`, run by `ModelRunner.run`, closed by
    `Scheduler.postprocess`. Prefills run before the forks, the forks before the decode."""

    prefills: list[tuple[Group, int]]  # problems to prefill now, each with the slot it goes to
    starts: list[Start]  # samples starting now (their first token comes from their problem's prefill)
    running: list[Sequence]  # samples already running: each feeds its last token to the decode
    generated: int = 0  # tokens postprocess appended (for the engine's statistics)

    @property
    def new(self) -> list[Sequence]:
        return [seq for seq, _, _ in self.starts]

    @property
    def decode(self) -> list[Sequence]:
        """The decode rows, in order: running samples, then the new ones."""
        return self.running + self.new


@dataclass(frozen=True)
class StopRules:
    """When a sample is done: a stop token (unless ignored), a stop string (needs `detokenize`), or
    max_new_tokens."""

    stop_token_ids: frozenset[int] = frozenset()
    ignore_stop_tokens: bool = False  # benchmarks: every sample runs to max_new_tokens
    detokenize: Callable[[list[int]], str] | None = field(default=None, compare=False)

    def finish_reason(self, seq: Sequence) -> str | None:
        token = seq.generated[-1]
        if (not self.ignore_stop_tokens and token in self.stop_token_ids) or (
            seq.sampling.stop and self._hits_stop_string(seq)
        ):
            return "stop"
        if len(seq.generated) >= seq.sampling.max_new_tokens:
            return "length"
        return None

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


class Scheduler:
    def __init__(
        self, num_slots: int, max_seq_len: int, max_prefill_tokens: int, rules: StopRules = StopRules()
    ) -> None:
        self.num_slots, self.max_seq_len = num_slots, max_seq_len
        self.max_prefill_tokens = max_prefill_tokens
        self.rules = rules
        self.free: list[int] = list(range(num_slots - 1, -1, -1))  # pop() hands out slot 0 first
        self.groups: deque[Group] = deque()  # problems with samples not started yet, in arrival order
        self.running: list[Sequence] = []

    def add(self, group: Group) -> None:
        self.groups.append(group)

    def has_work(self) -> bool:
        return bool(self.groups or self.running)

    def num_waiting_samples(self) -> int:
        return sum(len(group.waiting) for group in self.groups)

    def holds_parent(self) -> bool:
        return any(group.parent_slot is not None for group in self.groups)

    def schedule(self) -> Batch:
        """This step's prefills (each group with the slot to prefill into) and starts (each sample with
        its slot set, its group, and the slot to copy its state from, or None when it took over its
        parent's slot). A group whose prompt plus max_new_tokens exceeds `max_seq_len` blocks
        admission until the engine grows the pool."""
        prefills: list[tuple[Group, int]] = []
        starts: list[Start] = []
        prefill_tokens = 0
        for group in list(self.groups):
            if group.needs_prefill:
                need = len(group.prompt_ids) + group.max_new_tokens
                over_budget = prefills and prefill_tokens + len(group.prompt_ids) > self.max_prefill_tokens
                if not self.free or need > self.max_seq_len or over_budget:
                    break
                group.parent_slot = self.free.pop()
                prefills.append((group, group.parent_slot))
                prefill_tokens += len(group.prompt_ids)
            self._start_samples(group, starts)
            if group.waiting:
                break  # this group keeps its parent: admit nothing behind it
            self.groups.remove(group)
        for seq, _, _ in starts:
            seq.status = Status.RUNNING
        return Batch(prefills, starts, list(self.running))

    def _start_samples(self, group: Group, starts: list[Start]) -> None:
        while group.waiting:
            stuck = not self.free and not self.running and not starts
            if len(group.waiting) == 1 or stuck:
                seq = group.waiting.pop(0)
                seq.slot, group.parent_slot = group.parent_slot, None
                starts.append((seq, group, None))
                return
            if not self.free:
                return
            seq = group.waiting.pop(0)
            seq.slot = self.free.pop()
            starts.append((seq, group, group.parent_slot))

    def postprocess(self, batch: Batch, tokens: list[int]) -> list[Sequence]:
        """Append the step's tokens (`tokens`: the new samples' first tokens, then one per decode row)
        and return the samples that finished, their slots already freed. A new sample that finishes on
        its first token ignores its decode row's token."""
        new = batch.new
        self.running.extend(new)
        finished = []
        for seq, token in zip(new, tokens[: len(new)], strict=True):
            if self._append(seq, token, batch):
                finished.append(seq)
        for seq, token in zip(batch.decode, tokens[len(new) :], strict=True):
            if seq.finish_reason is None and self._append(seq, token, batch):
                finished.append(seq)
        for seq in finished:
            self.finish(seq)
        return finished

    def _append(self, seq: Sequence, token: int, batch: Batch) -> bool:
        """Record one generated token; return True when the sample is finished."""
        seq.generated.append(token)
        batch.generated += 1
        seq.finish_reason = self.rules.finish_reason(seq)
        if seq.finish_reason is not None:
            seq.finished_at = time.perf_counter()
        return seq.finish_reason is not None

    def abort(self, request_id: str) -> None:
        """Drop every waiting and running sample of `request_id` and free their slots (its parent's too)."""
        for group in [g for g in self.groups if g.request_id == request_id]:
            self.groups.remove(group)
            if group.parent_slot is not None:
                self.free.append(group.parent_slot)
                group.parent_slot = None
            group.first_logits = None
            for seq in group.waiting:
                seq.status, seq.finish_reason = Status.FINISHED, "abort"
            group.waiting.clear()
        for seq in [s for s in self.running if s.request_id == request_id]:
            seq.finish_reason = "abort"
            self.finish(seq)

    def finish(self, seq: Sequence) -> None:
        """Take the sample off the running list and free its slot at once."""
        seq.status = Status.FINISHED
        if seq in self.running:
            self.running.remove(seq)
        if seq.slot is not None:
            self.free.append(seq.slot)
            seq.slot = None
