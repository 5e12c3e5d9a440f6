"""The benchmarks: a registry of Task objects, one module per benchmark, named suites of them, and
user task files (TOML, tasks/task_file.py).

from tasks import get_task
task = get_task("aime24")
problems = task.load(data_dir)                 # local folder, else the Hub (pinned revision)
view = task.sample_view(problems[0], sample_index=3, seed=0)   # the prompt and gold of one sample
"""

from __future__ import annotations

from evalkit.core.errors import EvalkitError
from tasks import aime24, aime25, aime26, amc23, arith_demo, gpqa_diamond, hmmt_feb25, math500
from tasks.task import Task

_MODULES = (aime24, aime25, aime26, hmmt_feb25, amc23, math500, gpqa_diamond, arith_demo)
_TASKS: dict[str, Task] = {module.TASK.name: module.TASK for module in _MODULES}
TASK_NAMES: tuple[str, ...] = tuple(_TASKS)

# Named groups: `--task model-card` runs each member as its own task (own run folder and results).
SUITES: dict[str, tuple[str, ...]] = {
    "model-card": ("aime24", "aime25", "math500", "gpqa_diamond"),  # what the Phi-4 model cards report
    "contests": ("aime24", "aime25", "aime26", "hmmt_feb25", "amc23"),
}


def valid_names() -> str:
    """The valid tasks and suites, for messages."""
    return f"valid tasks: {', '.join(TASK_NAMES)}; suites: {', '.join(SUITES)}"


def get_task(name: str) -> Task:
    """The task called `name`; an unknown name is a user error listing the valid ones."""
    if name not in _TASKS:
        raise EvalkitError(f"unknown task '{name}'; {valid_names()}")
    return _TASKS[name]


def expand_suites(names: list[str] | tuple[str, ...]) -> list[str]:
    """Each suite name replaced by its members, in order; other names kept. A task named twice (directly
    or through suites) is kept once, at its first place."""
    out: list[str] = []
    for name in names:
        for member in SUITES.get(name, (name,)):
            if member not in out:
                out.append(member)
    return out


__all__ = ["SUITES", "TASK_NAMES", "Task", "expand_suites", "get_task", "valid_names"]
