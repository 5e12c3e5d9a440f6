"""SeededAnswerBackend: a TEST backend (never shipped) that answers arith-demo from each sample's seed.

For a sample with seed s and gold g it answers
  - truncated (finish_reason "length", no answer)  when s % 7 == 0,
  - wrongly  (\\boxed{g + 1})                        when s % 3 == 0 (and not truncated),
  - correctly (\\boxed{g})                           otherwise,
so a test can compute the expected Pass@1 by hand from `derive_seed`. Completions come back in a shuffled
order (seeded) to mimic an engine that finishes samples out of order. `delay` sleeps per completion so a
kill -9 test can catch the run in the middle; `crash=start` kills the process as the backend is built and
`refuse=TEXT` raises a BackendError there (what the split-run supervisor must tell apart); `built_log=PATH`
appends a line to PATH each time the backend is built.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterable, Iterator
from typing import Any

from evalkit.core.errors import BackendError
from evalkit.core.types import Completion, GenerationRequest
from model_backends.registry import BackendOptions


def expected_outcome(seed: int) -> str:
    """'length', 'wrong' or 'correct': the rule the backend follows (also used by tests)."""
    if seed % 7 == 0:
        return "length"
    if seed % 3 == 0:
        return "wrong"
    return "correct"


def answer_key() -> dict[str, str]:
    """user message -> gold, for every prompt template of arith-demo."""
    from tasks import get_task

    task = get_task("arith-demo")
    key = {}
    for prompt in task.prompt_templates:
        for problem in task.load(prompt=prompt):
            key[problem.messages[-1]["content"]] = problem.gold
    return key


class SeededAnswerBackend:
    name = "seeded-test"

    def __init__(self, delay: float = 0.0, calls: list | None = None) -> None:
        self.key = answer_key()
        self.delay = delay
        self.calls = calls if calls is not None else []  # every request seen, for assertions

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        requests = list(requests)
        self.calls.extend(requests)
        jobs = [(r, i, s) for r in requests for i, s in zip(r.sample_indices, r.seeds, strict=True)]
        random.Random(len(jobs)).shuffle(jobs)
        for request, index, seed in jobs:
            if self.delay:
                time.sleep(self.delay)  # simulated generation time (not synchronisation)
            gold = int(self.key[request.messages[-1]["content"]])
            outcome = expected_outcome(seed)
            if outcome == "length":
                text, reason, tokens = (
                    "Let me think about this carefully and",
                    "length",
                    request.sampling.max_new_tokens,
                )
            else:
                answer = gold if outcome == "correct" else gold + 1
                text, reason, tokens = f"The answer is computed.\n\\boxed{{{answer}}}", "stop", 10 + seed % 50
            yield Completion(request.request_id, index, text, 20, tokens, reason, seconds=0.01)

    def model_info(self) -> dict[str, Any]:
        return {"backend": self.name, "model": "seeded-test"}


def create(options: BackendOptions) -> SeededAnswerBackend:
    if options.extra.get("built_log"):  # one line per backend built: how often a worker (re)started
        with open(options.extra["built_log"], "a") as log:
            log.write(f"{os.getpid()}\n")
    if options.extra.get("crash") == "start":  # a process that dies as it starts (restart limits)
        os.kill(os.getpid(), signal.SIGKILL)
    if options.extra.get("refuse"):  # a backend that refuses its options (an error, not a crash)
        raise BackendError(f"seeded-test refuses: {options.extra['refuse']}")
    return SeededAnswerBackend(delay=float(options.extra.get("delay", 0.0)))


def register() -> None:
    """Make `--backend seeded-test` resolve to this module (in this process only)."""
    from model_backends.registry import BACKENDS

    BACKENDS["seeded-test"] = "tests.evalkit.fake_backend"


if __name__ == "__main__":
    # `python -m tests.evalkit.fake_backend run --backend seeded-test ...`: the evalkit CLI with this backend.
    register()
    from evalkit.cli import main

    main()
