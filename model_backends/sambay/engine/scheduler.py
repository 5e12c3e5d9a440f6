"""Slot admission: which problems to prefill and which samples to start this step.

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
- a finished sample frees its slot at once (`finish`); the next `schedule` hands it out.
"""

from __future__ import annotations

from collections import deque

from model_backends.sambay.engine.sequence import Group, Sequence, Status

Start = tuple[Sequence, Group, int | None]  # (sample, its problem, slot to copy its state from)


class Scheduler:
    def __init__(self, num_slots: int, max_prefill_tokens: int) -> None:
        self.num_slots = num_slots
        self.max_prefill_tokens = max_prefill_tokens
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

    def schedule(self, max_seq_len: int) -> tuple[list[tuple[Group, int]], list[Start]]:
        """Return (groups to prefill now with the slot to prefill into; samples to start now).

        Each start is (sequence with its slot set, its group, slot to copy the state from, or None when
        the sequence took over its parent's slot). Prefills must run before the copies. A group whose prompt plus
        max_new_tokens exceeds `max_seq_len` blocks admission until the engine grows the pool.
        """
        prefills: list[tuple[Group, int]] = []
        starts: list[Start] = []
        prefill_tokens = 0
        for group in list(self.groups):
            if group.needs_prefill:
                need = len(group.prompt_ids) + group.max_new_tokens
                over_budget = prefills and prefill_tokens + len(group.prompt_ids) > self.max_prefill_tokens
                if not self.free or need > max_seq_len or over_budget:
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
        return prefills, starts

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

    def activate(self, seqs: list[Sequence]) -> None:
        self.running.extend(seqs)

    def finish(self, seq: Sequence) -> None:
        """Free the sample's slot at once."""
        seq.status = Status.FINISHED
        if seq in self.running:
            self.running.remove(seq)
        if seq.slot is not None:
            self.free.append(seq.slot)
            seq.slot = None
