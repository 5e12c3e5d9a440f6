"""A time budget for one benchmark process.

benchmarks/gpu_check.sh runs each part under an outer `timeout`; a process killed there keeps only what
it saved. So a part is given its own budget a little under that timeout, and each stage that is not
essential (a check run, an expensive baseline point, the compiled baseline) runs only when its estimated
time fits in what is left; a skipped stage is recorded with the reason instead of being cut off midway.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Budget:
    seconds: float | None  # None: no limit (the CPU preset, interactive runs)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    start: float | None = None  # the clock's reading when the budget began (None: at creation)
    skipped: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.start is None:
            self.start = self.clock()

    def left(self) -> float:
        if self.seconds is None:
            return math.inf
        return self.seconds - (self.clock() - self.start)

    def allows(self, stage: str, estimate: float) -> bool:
        """True when `estimate` seconds fit in what is left; otherwise record the stage as skipped."""
        left = self.left()
        if estimate <= left:
            return True
        self.skipped.append(
            {"stage": stage, "estimated_seconds": round(estimate, 1), "seconds_left": round(left, 1)}
        )
        print(f"skipping {stage}: needs ~{estimate:.0f} s, {left:.0f} s of the time budget left", flush=True)
        return False
