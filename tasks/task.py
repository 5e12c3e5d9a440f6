"""The Task type: one benchmark's name, source, defaults, prompts and loader (the harness sees it through
the `evalkit.core.types.Task` protocol)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.settings import resolve_data_dir
from evalkit.core.types import AnswerType, Problem, SampleView, stable_hash
from tasks.prompts import OFFICIAL

# (data folder or None) -> validated rows. Each benchmark module supplies one.
RowReader = Callable[["Path | None"], list[dict]]
# (row, prompt name, template text) -> Problem.
RowToProblem = Callable[[dict, str, str], Problem]
# (task, problem, sample index, seed) -> SampleView; None means every sample sees the problem as is.
ViewMaker = Callable[["Task", Problem, int, int], SampleView]


# eq=False: tasks compare and hash by identity (they hold functions and a dict of templates).
@dataclass(frozen=True, eq=False)
class Task:
    name: str
    source: str  # where the data comes from, for humans (shown by `evalkit tasks`)
    default_n: int  # samples per problem in the published protocol
    answer_type: AnswerType
    prompt_templates: dict[str, str]
    metadata_fields: tuple[str, ...]  # Problem.metadata keys worth a per-group breakdown
    expected_count: int | None
    read_rows: RowReader = field(repr=False)
    to_problem: RowToProblem = field(repr=False)
    local_file: str | None = None  # path inside the data folder; None: the task needs no data
    hub: str | None = None  # "repo@revision" of the Hub fallback, for messages and the task table
    make_view: ViewMaker | None = field(default=None, repr=False)
    default_prompt: str = OFFICIAL
    private: bool = False  # the text must never reach the disk (see evalkit.core.types.Task.private)
    file: str | None = None  # a task file's absolute path (how workers find the same task); None: built in
    definition: str | None = None  # a task file's content + data hash (evalkit.core.types.Task.definition)

    @property
    def per_sample_prompts(self) -> bool:
        """True when each sample sees its own prompt (a view maker, e.g. GPQA's option order)."""
        return self.make_view is not None

    def template(self, prompt: str | None = None) -> str:
        """The template text of the named prompt (default: the official one)."""
        name = prompt or self.default_prompt
        if name not in self.prompt_templates:
            valid = ", ".join(self.prompt_templates)
            raise EvalkitError(f"unknown prompt '{name}' for task {self.name}; choose one of: {valid}")
        return self.prompt_templates[name]

    def prompt_hash(self, prompt: str | None = None) -> str:
        return stable_hash(self.template(prompt))

    def find_local(self, data_dir: str | Path | None = None) -> Path | None:
        """The local data file this task would read, if it exists (no validation)."""
        folder = resolve_data_dir(data_dir)
        if self.local_file is None or folder is None:
            return None
        path = folder / self.local_file
        return path if path.is_file() else None

    def load(self, data_dir: str | Path | None = None, prompt: str | None = None) -> list[Problem]:
        """Read, validate and render every problem with the named prompt (default: official)."""
        name = prompt or self.default_prompt
        template = self.template(name)
        rows = self.read_rows(resolve_data_dir(data_dir))
        return [self.to_problem(row, name, template) for row in rows]

    def sample_view(self, problem: Problem, sample_index: int, seed: int) -> SampleView:
        """What sample `sample_index` of a run with `seed` is shown, and its gold."""
        if self.make_view is None:
            return SampleView(messages=problem.messages, gold=problem.gold, permutation=None)
        return self.make_view(self, problem, sample_index, seed)
