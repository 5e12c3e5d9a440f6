"""Task files (TOML): what they load to, and one test per kind of mistake (each one line naming the
file, the key and the fix)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from evalkit.core.identity import data_fingerprint
from tasks.task_file import load_task_file
from tasks.task_file_data import TaskFileError
from tests.tasks.example_task_file import EXAMPLE_TOML

BASE = EXAMPLE_TOML
ROWS = [
    {
        "qid": 1,
        "question": "What is $\\frac{1}{2}+\\frac{1}{4}$? Use {braces} freely.",
        "final": "\\frac{3}{4}",
    },
    {"qid": "b", "question": "Solve $x^2=4$, $x>0$.", "final": 2, "level": 3},
]


def write(folder: Path, toml: str = BASE, rows: list[dict] | None = None, data: str = "rows.jsonl") -> Path:
    (folder / data).write_text("".join(json.dumps(row) + "\n" for row in (ROWS if rows is None else rows)))
    path = folder / "task.toml"
    path.write_text(toml)
    return path


def test_a_math_task_file_loads_with_literal_placeholder_substitution(tmp_path):
    task = load_task_file(write(tmp_path))
    assert (task.name, task.default_n, task.answer_type, task.per_sample_prompts) == (
        "my-algebra",
        8,
        "math",
        False,
    )
    first, second = task.load()
    assert (first.id, first.gold, second.id, second.gold) == ("1", "\\frac{3}{4}", "b", "2")
    # {problem} replaced literally: the prompt's \boxed{} and the problem's own braces are untouched
    assert first.messages == (
        {
            "role": "user",
            "content": "Please reason step by step, and put your final answer within \\boxed{}. "
            "What is $\\frac{1}{2}+\\frac{1}{4}$? Use {braces} freely.",
        },
    )


def test_system_prompt_metadata_private_and_description(tmp_path):
    toml = BASE.replace("[fields]", 'system = "You are a careful solver."\nmetadata = ["level"]\n'
                        'private = true\ndescription = "my algebra set"\n[fields]')  # fmt: skip
    rows = [{**row, "level": i} for i, row in enumerate(ROWS)]
    task = load_task_file(write(tmp_path, toml, rows))
    problems = task.load()
    assert problems[0].messages[0] == {"role": "system", "content": "You are a careful solver."}
    assert problems[1].metadata == {"level": 1}
    assert (task.private, task.source, task.metadata_fields) == (True, "my algebra set", ("level",))


def test_without_a_prompt_the_official_prompts_are_used(tmp_path):
    task = load_task_file(write(tmp_path, BASE.replace('prompt = "', '# prompt = "')))
    assert task.default_prompt == "official" and "lighteval" in task.prompt_templates
    assert task.load()[1].messages[0]["content"].startswith("Please reason step by step")


def test_integer_answers_in_any_integer_spelling(tmp_path):
    rows = [{"qid": i, "question": "q", "final": value} for i, value in enumerate([27.0, "025", -1, "4.0"])]
    task = load_task_file(write(tmp_path, BASE.replace('"math"', '"integer"'), rows))
    assert [p.gold for p in task.load()] == ["27", "25", "-1", "4"]


def test_csv_and_parquet_data(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"qid": ["x", "y"], "question": ["1+1?", "2+2?"], "final": ["2", "4"]})
    frame.to_csv(tmp_path / "rows.csv", index=False)
    frame.to_parquet(tmp_path / "rows.parquet")
    for name in ("rows.csv", "rows.parquet"):
        (tmp_path / f"{name}.toml").write_text(BASE.replace("rows.jsonl", name))
        problems = load_task_file(tmp_path / f"{name}.toml").load()
        assert [(p.id, p.gold) for p in problems] == [("x", "2"), ("y", "4")]


CHOICE = """name = "quiz"
data = "rows.jsonl"
answer_type = "choice"
[fields]
id = "id"
problem = "q"
answer = "a"
choices = CHOICES
"""


def test_choice_answer_as_text_or_letter_and_columns_or_list(tmp_path):
    rows = [
        {"id": "t", "q": "Capital of France?", "opts": ["Rome", "Paris", "Oslo"], "a": "Paris"},
        {"id": "l", "q": "2+2?", "opts": ["3", "4", "5"], "a": "b"},
    ]
    task = load_task_file(write(tmp_path, CHOICE.replace("CHOICES", '"opts"'), rows))
    text, letter = task.load()
    assert (text.gold, letter.gold) == ("B", "B")
    assert text.messages[0]["content"] == (
        "Please reason step by step, and put your final choice of one letter from A/B/C within \\boxed{}. "
        "Capital of France?\n\nA) Rome\nB) Paris\nC) Oslo"
    )
    columns = [{"id": "c", "q": "Pick", "w": "no", "x": "yes", "a": "yes"}]
    task = load_task_file(write(tmp_path, CHOICE.replace("CHOICES", '["w", "x"]'), columns))
    assert task.load()[0].gold == "B"


def test_shuffled_choices_are_balanced_and_deterministic(tmp_path):
    rows = [{"id": "s", "q": "Which?", "opts": ["w1", "right", "w2", "w3"], "a": "right"}]
    toml = CHOICE.replace("CHOICES", '"opts"\nshuffle = true')
    task = load_task_file(write(tmp_path, toml, rows))
    [problem] = task.load()
    views = [task.sample_view(problem, index, seed=5) for index in range(8)]
    assert Counter(view.gold for view in views) == {"A": 2, "B": 2, "C": 2, "D": 2}  # balanced
    for view in views:  # the gold letter shows the correct option's text
        line = next(x for x in view.messages[0]["content"].splitlines() if x.startswith(f"{view.gold})"))
        assert line == f"{view.gold}) right" and view.permutation.index(0) == "ABCD".index(view.gold)
    again = load_task_file(tmp_path / "task.toml")
    assert again.sample_view(again.load()[0], 3, seed=5) == views[3]  # a function of (id, sample, seed)
    assert problem.messages == task.sample_view(problem, 0, 0).messages


def test_the_definition_hash_follows_content_not_path(tmp_path):
    first = load_task_file(write(tmp_path))
    other = tmp_path / "elsewhere"
    other.mkdir()
    moved = load_task_file(write(other))
    assert first.definition == moved.definition and len(first.definition) == 16
    (tmp_path / "task.toml").write_text(BASE.replace("n = 8", "n = 4"))
    assert load_task_file(tmp_path / "task.toml").definition != first.definition  # the TOML changed
    (other / "rows.jsonl").write_text((other / "rows.jsonl").read_text() + "\n")  # the data's bytes changed
    assert load_task_file(other / "task.toml").definition != first.definition
    assert data_fingerprint(load_task_file(other / "task.toml").load()) == data_fingerprint(first.load())


def _error(path: Path) -> str:
    with pytest.raises(TaskFileError) as caught:
        load_task_file(path).load()
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path.resolve()))
    return message


@pytest.mark.parametrize(
    "case, toml, rows, fragments",
    [
        ("missing data file", BASE.replace("rows.jsonl", "absent.jsonl"), None,
         ["key 'data'", "absent.jsonl", "does not exist", "fix the path"]),
        ("unknown answer type", BASE.replace('"math"', '"maths"'), None,
         ["key 'answer_type'", "'maths'", "integer, math, choice"]),
        ("prompt without {problem}", BASE.replace("{problem}", "{question}"), None,
         ["key 'prompt'", "no {problem} placeholder", "add {problem}"]),
        ("missing id", BASE, [{"question": "q", "final": "1"}],
         ["key 'fields.id' = 'qid'", "rows.jsonl:1 has no field 'qid'", "(it has: question, final)"]),
        ("duplicate id", BASE, [*ROWS, {"qid": 1, "question": "q", "final": "1"}],
         ["key 'fields.id' = 'qid'", "rows.jsonl:3 repeats id '1'", "first at", "rows.jsonl:1", "unique"]),
        ("field absent from a row", BASE, [ROWS[0], {"qid": 2, "question": "q"}],
         ["key 'fields.answer' = 'final'", "rows.jsonl:2 has no field 'final'", "fix that row"]),
        ("unknown key (typo)", BASE.replace("n = 8", "samples = 8\nanswr_type = 1"), None,
         ["unknown key 'samples'", "valid keys"]),
        ("unknown key suggests", BASE.replace("n = 8", "promt = 'x'"), None,
         ["unknown key 'promt'", "did you mean 'prompt'?"]),
        ("unknown field key", BASE.replace('id = "qid"', 'idd = "qid"'), None,
         ["unknown key 'fields.idd'", "did you mean 'id'?"]),
        ("wrong type", BASE.replace("n = 8", 'n = "eight"'), None,
         ["key 'n' must be an integer, got a string", "n = 8"]),
        ("missing required key", BASE.replace('answer_type = "math"\n', ""), None,
         ["key 'answer_type' is missing", "add it"]),
        ("not an integer", BASE.replace('"math"', '"integer"'), None,
         ["key 'fields.answer' = 'final'", "rows.jsonl:1", "is not an integer", 'answer_type = "math"']),
        ("hub without revision", BASE.replace('"rows.jsonl"', '"hub:owner/name"\nsplit = "test"'), None,
         ["key 'data'", "has no revision", "hub:owner/name@<commit>"]),
        ("choice without choices", BASE.replace('"math"', '"choice"'), None,
         ["key 'fields.choices' is missing", 'choices = "options"']),
        ("bad toml", BASE.replace("n = 8", "n = = 8"), None, ["not valid TOML", "line 4"]),
        ("bad json line", BASE, "not json", ["key 'data'", "rows.jsonl:1 is not valid JSON", "fix that line"]),
    ],
)  # fmt: skip
def test_each_mistake_is_one_line_naming_file_key_and_fix(case, toml, rows, fragments, tmp_path):
    path = write(tmp_path, toml, rows if isinstance(rows, list) else None)
    if isinstance(rows, str):
        (tmp_path / "rows.jsonl").write_text(rows + "\n")
    message = _error(path)
    for fragment in fragments:
        assert fragment in message, (case, message)


def test_a_choice_answer_that_is_no_option_names_the_row(tmp_path):
    rows = [{"id": "1", "q": "?", "opts": ["x", "y"], "a": "z"}]
    message = _error(write(tmp_path, CHOICE.replace("CHOICES", '"opts"'), rows))
    assert "key 'fields.answer' = 'a'" in message and "rows.jsonl:1" in message and "letter A-B" in message


def test_a_missing_task_file_is_named(tmp_path):
    with pytest.raises(TaskFileError, match=r"nope\.toml: no such task file; check the path given to --task"):
        load_task_file(tmp_path / "nope.toml")


def test_parquet_without_pyarrow_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    import sys

    (tmp_path / "rows.parquet").write_bytes(b"PAR1")
    (tmp_path / "task.toml").write_text(BASE.replace("rows.jsonl", "rows.parquet"))
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    message = _error(tmp_path / "task.toml")
    assert "needs pyarrow" in message and "pip install pyarrow" in message


def test_a_task_file_cannot_take_a_built_in_name(tmp_path):
    message = _error(write(tmp_path, BASE.replace('"my-algebra"', '"aime24"')))
    assert "key 'name' = 'aime24' is a built-in task or suite" in message and "choose another name" in message


def test_hub_data_is_loaded_at_its_pinned_revision_and_split(tmp_path, monkeypatch):
    import sys
    import types

    calls = []

    def load_dataset(repo, split, revision):
        calls.append((repo, split, revision))
        return [{"qid": "h1", "question": "1+1?", "final": "2"}]

    toml = BASE.replace('"rows.jsonl"', '"hub:someone/algebra@0123abcd"\nsplit = "test"')
    (tmp_path / "task.toml").write_text(toml)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    task = load_task_file(tmp_path / "task.toml")
    assert [(p.id, p.gold) for p in task.load()] == [("h1", "2")]
    assert calls == [("someone/algebra", "test", "0123abcd")] and task.hub == "hub:someone/algebra@0123abcd"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "offline mode is set" in _error(tmp_path / "task.toml")
