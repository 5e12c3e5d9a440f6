"""Task files: a user's benchmark as a TOML file (`evalkit run --task path/to/task.toml`).

    name = "my-algebra"
    data = "my_algebra.jsonl"        # .jsonl / .csv / .parquet next to this file, or "hub:owner/name@rev"
    answer_type = "math"             # integer | math | choice
    n = 8
    prompt = "Please reason step by step, and put your final answer within \\boxed{}. {problem}"
    [fields]
    id = "qid"
    problem = "question"
    answer = "final"

Optional top-level keys: split (Hub data), system, metadata (row fields kept for breakdowns), private,
description, shuffle (choice tasks); `[fields] choices` (choice tasks). The rules are in the README
("Your own benchmark: task files"). Every mistake is a TaskFileError: one line naming the file, the key
and the fix. The prompt's placeholders `{problem}` (and `{choices}`) are replaced literally in one pass,
so other braces (`\\boxed{}`) and braces in the problem text are left alone.

Choice tasks: the options are a list field (`choices = "options"`) or one column per option
(`choices = ["A", "B", "C", "D"]`). The `answer` field is the correct option's text, or its letter
(A = first option): a value equal to an option's text is that option; else a single letter within range is
that letter; an answer that could mean two different options is refused. Gold is the correct letter. With
`shuffle = true` each sample sees its own balanced option order (tasks/choices.py, as GPQA).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.core.types import Problem, SampleView
from tasks.choices import LETTERS, balanced_order
from tasks.prompts import MATH_PROMPTS, OFFICIAL
from tasks.task import Task
from tasks.task_file_data import DataSource, TaskFileError, parse_source, read_rows

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the backport, same API
    import tomli as tomllib

ANSWER_TYPES = ("integer", "math", "choice")
TOP_KEYS = {
    "name": str,
    "data": str,
    "split": str,
    "answer_type": str,
    "n": int,
    "prompt": str,
    "system": str,
    "metadata": list,
    "private": bool,
    "description": str,
    "shuffle": bool,
    "fields": dict,
}
FIELD_KEYS = ("id", "problem", "answer", "choices", "shuffle")
CUSTOM_PROMPT = "custom"
_PLACEHOLDER = re.compile(r"\{(problem|choices|letters)\}")
_INTEGER = re.compile(r"[+-]?\d+(\.0*)?")


def is_task_file(name: str) -> bool:
    return name.lower().endswith(".toml")


def _suggest(key: str, valid: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(valid)}"


def _type_name(value: object) -> str:
    return {str: "a string", int: "an integer", bool: "true/false", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__
    )


def _read_toml(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise TaskFileError(f"{path}: no such task file; check the path given to --task") from None
    except OSError as exc:
        raise TaskFileError(f"{path}: cannot read the task file ({exc.strerror}); check the path") from exc
    try:
        return tomllib.loads(blob.decode("utf-8")), blob
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TaskFileError(f"{path}: not valid TOML ({exc}); fix the syntax there") from exc


def _check_keys(path: Path, doc: dict[str, Any]) -> None:
    for key, value in doc.items():
        if key not in TOP_KEYS:
            raise TaskFileError(f"{path}: unknown key '{key}'; {_suggest(key, list(TOP_KEYS))}")
        expected = TOP_KEYS[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            if key == "fields":
                raise TaskFileError(
                    f"{path}: key 'fields' must be a table; write a [fields] section with id, problem, answer"
                )
            example = {str: '"text"', int: "8", bool: "true", list: '["level"]'}[expected]
            raise TaskFileError(
                f"{path}: key '{key}' must be {_type_name(expected())}, got {_type_name(value)}; "
                f"write e.g. {key} = {example}"
            )
    for key in ("name", "data", "answer_type"):
        if key not in doc:
            raise TaskFileError(f"{path}: key '{key}' is missing; add it (see the README's task-file form)")
    if "fields" not in doc:
        raise TaskFileError(f"{path}: key 'fields' is missing; add a [fields] table with id, problem, answer")


def _check_fields(path: Path, fields: dict[str, Any], answer_type: str) -> None:
    for key, value in fields.items():
        if key not in FIELD_KEYS:
            raise TaskFileError(f"{path}: unknown key 'fields.{key}'; {_suggest(key, FIELD_KEYS)}")
        if key == "shuffle":
            if not isinstance(value, bool):
                raise TaskFileError(f"{path}: key 'fields.shuffle' must be true/false; write shuffle = true")
        elif key == "choices":
            ok = isinstance(value, str) or (
                isinstance(value, list) and len(value) >= 2 and all(isinstance(v, str) for v in value)
            )
            if not ok:
                raise TaskFileError(
                    f"{path}: key 'fields.choices' must name a list field (choices = \"options\") or two or "
                    'more columns (choices = ["A", "B", "C", "D"])'
                )
        elif not isinstance(value, str) or not value:
            raise TaskFileError(f"{path}: key 'fields.{key}' must be a field name (a string), got {value!r}")
    for key in ("id", "problem", "answer"):
        if key not in fields:
            raise TaskFileError(f"{path}: key 'fields.{key}' is missing; name the row field that holds it")
    if answer_type == "choice" and "choices" not in fields:
        raise TaskFileError(
            f"{path}: key 'fields.choices' is missing; a choice task needs the options: choices = "
            '"options" (a list field) or choices = ["A", "B", ...] (one column each)'
        )
    if answer_type != "choice" and ("choices" in fields or "shuffle" in fields):
        raise TaskFileError(
            f"{path}: key 'fields.choices' / 'shuffle' is for answer_type = \"choice\"; remove it or change "
            "answer_type"
        )


def load_task_file(path: str | Path) -> Task:
    """Parse and validate a task file into a Task (its data is read when the task loads)."""
    file = Path(path).expanduser()
    doc, blob = _read_toml(file)
    file = file.resolve()
    _check_keys(file, doc)
    answer_type = doc["answer_type"]
    if answer_type not in ANSWER_TYPES:
        raise TaskFileError(
            f"{file}: key 'answer_type' = {answer_type!r} is unknown; use one of {', '.join(ANSWER_TYPES)}"
        )
    name = doc["name"].strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
        raise TaskFileError(
            f"{file}: key 'name' = {doc['name']!r} must be letters, digits and _ . + - (no spaces or "
            'slashes: it names run folders and table rows); e.g. name = "my-algebra"'
        )
    from tasks import SUITES, TASK_NAMES

    if name in TASK_NAMES or name in SUITES:
        raise TaskFileError(
            f"{file}: key 'name' = {name!r} is a built-in task or suite (its published numbers and results "
            "would mix with yours); choose another name"
        )
    n = doc.get("n", 1)
    if n < 1:
        raise TaskFileError(f"{file}: key 'n' must be at least 1, got {n}; e.g. n = 8")
    fields: dict[str, Any] = doc["fields"]
    _check_fields(file, fields, answer_type)
    shuffle = _shuffle(file, doc, fields)
    metadata = doc.get("metadata", [])
    if not all(isinstance(m, str) and m for m in metadata):
        raise TaskFileError(
            f"{file}: key 'metadata' must be a list of field names, e.g. metadata = [\"level\"]"
        )
    prompt = doc.get("prompt")
    if prompt is not None and "{problem}" not in prompt:
        raise TaskFileError(
            f"{file}: key 'prompt' has no {{problem}} placeholder; add {{problem}} where the problem text goes"
        )
    if prompt is not None and answer_type != "choice" and ("{choices}" in prompt or "{letters}" in prompt):
        raise TaskFileError(
            f"{file}: key 'prompt' uses {{choices}} or {{letters}}, which only choice tasks have; remove it"
        )
    source = parse_source(file, doc["data"], doc.get("split"))
    definition = hashlib.sha256(blob + b"\0" + source.fingerprint.encode()).hexdigest()[:16]
    spec = _Spec(file, source, answer_type, fields, tuple(metadata), shuffle, doc.get("system"))
    if prompt is not None:
        templates, default = {CUSTOM_PROMPT: prompt}, CUSTOM_PROMPT
    elif answer_type == "choice":
        templates, default = {OFFICIAL: CHOICE_PROMPT}, OFFICIAL
    else:
        templates, default = dict(MATH_PROMPTS), OFFICIAL
    return Task(
        name=name,
        source=doc.get("description") or f"task file {file.name} ({source.describe()})",
        default_n=n,
        answer_type=answer_type,
        prompt_templates=templates,
        metadata_fields=tuple(metadata),
        expected_count=None,
        read_rows=lambda data_dir: spec.rows(),
        to_problem=spec.to_problem,
        local_file=None,
        hub=source.spec if source.path is None else None,
        make_view=spec.make_view if shuffle else None,
        default_prompt=default,
        private=doc.get("private", False),
        file=str(file),
        definition=definition,
    )


def _shuffle(file: Path, doc: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    if "shuffle" in doc and "shuffle" in fields:
        raise TaskFileError(f"{file}: key 'shuffle' is given twice (top level and [fields]); keep one")
    shuffle = bool(doc.get("shuffle", fields.get("shuffle", False)))
    if shuffle and doc["answer_type"] != "choice":
        raise TaskFileError(f"{file}: key 'shuffle' is for answer_type = \"choice\"; remove it")
    return shuffle


# The default prompt of a choice task: GPQA's official wording, for any number of options.
CHOICE_PROMPT = (
    "Please reason step by step, and put your final choice of one letter from {letters} within "
    "\\boxed{}. {problem}\n\n{choices}"
)


def fill(template: str, problem: str, choices: str = "", letters: str = "") -> str:
    """The prompt with {problem}, {choices} and {letters} replaced in one pass (nothing else is touched)."""
    values = {"problem": problem, "choices": choices, "letters": letters}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _json_list(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


class _Spec:
    """A parsed task file: turns its rows into validated Problems."""

    def __init__(self, file, source: DataSource, answer_type, fields, metadata, shuffle, system) -> None:
        self.file, self.source, self.answer_type = file, source, answer_type
        self.fields, self.metadata, self.shuffle, self.system = fields, metadata, shuffle, system

    def rows(self) -> list[dict]:
        """Every row checked (fields present, ids unique), tagged with where it is."""
        rows = read_rows(self.file, self.source)
        if not rows:
            raise TaskFileError(f"{self.file}: key 'data': {self.source.describe()} has no rows; add some")
        seen: dict[str, str] = {}
        out = []
        for where, row in rows:
            for key in ("id", "problem", "answer"):
                self._need(row, where, f"fields.{key}", self.fields[key])
            for name in self.metadata:
                self._need(row, where, "metadata", name)
            row_id = str(row[self.fields["id"]]).strip()
            if not row_id:
                raise TaskFileError(
                    f"{self.file}: key 'fields.id' = '{self.fields['id']}': {where} has an empty id; give "
                    "every row an id"
                )
            if row_id in seen:
                raise TaskFileError(
                    f"{self.file}: key 'fields.id' = '{self.fields['id']}': {where} repeats id {row_id!r} "
                    f"(first at {seen[row_id]}); ids must be unique"
                )
            seen[row_id] = where
            out.append({"__where__": where, **row})
        return out

    def _need(self, row: dict, where: str, key: str, field: str) -> None:
        if field not in row or row[field] is None:
            have = ", ".join(k for k in row if not k.startswith("__"))[:200]
            raise TaskFileError(
                f"{self.file}: key '{key}' = '{field}': {where} has no field '{field}' (it has: {have}); "
                "fix that row or name the right field"
            )

    def _options(self, row: dict) -> list[str]:
        where, spec = row["__where__"], self.fields["choices"]
        if isinstance(spec, str):
            self._need(row, where, "fields.choices", spec)
            options = row[spec]
            if isinstance(options, str) and options.lstrip().startswith("["):  # a list stored as CSV text
                options = _json_list(options)
            if not isinstance(options, list) or len(options) < 2:
                raise TaskFileError(
                    f"{self.file}: key 'fields.choices' = '{spec}': {where} holds {type(options).__name__}, "
                    "not a list of two or more options; fix the row or list the option columns"
                )
        else:
            for column in spec:
                self._need(row, where, "fields.choices", column)
            options = [row[column] for column in spec]
        if len(options) > len(LETTERS):
            raise TaskFileError(f"{self.file}: key 'fields.choices': {where} has more than 26 options")
        return [str(option) for option in options]

    def _correct(self, row: dict, options: list[str]) -> int:
        where, answer = row["__where__"], str(row[self.fields["answer"]]).strip()
        by_text = [i for i, option in enumerate(options) if option.strip() == answer]
        letter = answer.upper().strip("()") if len(answer.strip("()")) == 1 else ""
        by_letter = LETTERS.index(letter) if letter and letter in LETTERS[: len(options)] else None
        if by_text and by_letter is not None and by_letter not in by_text:
            raise TaskFileError(
                f"{self.file}: key 'fields.answer' = '{self.fields['answer']}': {where}: {answer!r} is both "
                f"the text of option {LETTERS[by_text[0]]} and the letter of another; give the option's text"
            )
        if by_text:
            return by_text[0]
        if by_letter is not None:
            return by_letter
        raise TaskFileError(
            f"{self.file}: key 'fields.answer' = '{self.fields['answer']}': {where}: {answer!r} is neither an "
            f"option's text nor a letter A-{LETTERS[len(options) - 1]}; give the correct option's text or letter"
        )

    def _messages(self, template: str, problem: str, options: list[str] | None = None) -> tuple[dict, ...]:
        listing = "\n".join(f"{LETTERS[i]}) {option}" for i, option in enumerate(options or []))
        letters = "/".join(LETTERS[: len(options or [])])
        user = {"role": "user", "content": fill(template, problem, listing, letters)}
        return ({"role": "system", "content": self.system}, user) if self.system else (user,)

    def to_problem(self, row: dict, prompt_name: str, template: str) -> Problem:
        where = row["__where__"]
        problem_text = str(row[self.fields["problem"]])
        answer = row[self.fields["answer"]]
        metadata: dict[str, Any] = {name: row[name] for name in self.metadata}
        row_id = str(row[self.fields["id"]]).strip()
        if self.answer_type == "integer":
            text = str(answer).strip()
            if isinstance(answer, bool) or not _INTEGER.fullmatch(text):
                raise TaskFileError(
                    f"{self.file}: key 'fields.answer' = '{self.fields['answer']}': {where}: {answer!r} is "
                    'not an integer (answer_type = "integer"); fix the row or use answer_type = "math"'
                )
            gold = str(int(float(text))) if "." in text else str(int(text))
            return Problem(row_id, self._messages(template, problem_text), gold, "integer", metadata)
        if self.answer_type == "math":
            return Problem(
                row_id, self._messages(template, problem_text), str(answer).strip(), "math", metadata
            )
        options = self._options(row)
        correct = self._correct(row, options)
        # Stored like GPQA's: option 0 is the correct one, then the others in file order.
        ordered = [options[correct], *(o for i, o in enumerate(options) if i != correct)]
        metadata = {**metadata, "__question": problem_text, "__options": ordered, "__template": template}
        if self.shuffle:
            problem = Problem(row_id, (), LETTERS[correct], "choice", metadata)
            return Problem(
                row_id, self.make_view(None, problem, 0, 0).messages, options[correct], "choice", metadata
            )
        return Problem(
            row_id, self._messages(template, problem_text, options), LETTERS[correct], "choice", metadata
        )

    def make_view(self, task: Task | None, problem: Problem, sample_index: int, seed: int) -> SampleView:
        ordered = problem.metadata["__options"]
        order = balanced_order("taskfile", problem.id, sample_index, seed, len(ordered))
        shown = [ordered[index] for index in order]
        messages = self._messages(problem.metadata["__template"], problem.metadata["__question"], shown)
        return SampleView(messages=messages, gold=LETTERS[order.index(0)], permutation=order)
