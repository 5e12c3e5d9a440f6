"""The benchmarks: a registry of Task objects, one module per benchmark.

from tasks import get_task
task = get_task("aime24")
problems = task.load(data_dir)                 # local folder, else the Hub (pinned revision)
view = task.sample_view(problems[0], sample_index=3, seed=0)   # the prompt and gold of one sample
"""

from __future__ import annotations

from evalkit.core.errors import EvalkitError
from tasks import aime24, aime25, arith_demo, gpqa_diamond, math500
from tasks.task import Task

_TASKS: dict[str, Task] = {
    module.TASK.name: module.TASK for module in (aime24, aime25, math500, gpqa_diamond, arith_demo)
}
TASK_NAMES: tuple[str, ...] = tuple(_TASKS)


def get_task(name: str) -> Task:
    """The task called `name`; an unknown name is a user error listing the valid ones."""
    if name not in _TASKS:
        raise EvalkitError(f"unknown task '{name}'; valid tasks: {', '.join(TASK_NAMES)}")
    return _TASKS[name]


__all__ = ["TASK_NAMES", "Task", "get_task"]
