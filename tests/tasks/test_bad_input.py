"""Broken or missing data gives one clear DataError naming the file, the line and the problem."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from evalkit.core.errors import DataError
from evalkit.core.settings import resolve_data_dir
from tasks import get_task
from tasks.gpqa_diamond import SPEC as GPQA_SPEC
from tasks.gpqa_diamond import ZIP_MEMBER
from tasks.loading import HubSource, RowSpec, read_csv_in_zip, read_hub


def _lines(count: int = 30) -> list[str]:
    return [json.dumps({"id": str(i), "problem": f"problem {i}", "answer": i}) for i in range(count)]


def _replace(lines: list[str], lineno: int, text: str) -> list[str]:
    return lines[: lineno - 1] + [text] + lines[lineno:]


BAD_AIME25_FILES = [
    # (case, file content, expected message fragment after the file name)
    (
        "missing field",
        "\n".join(_replace(_lines(), 5, '{"id": "4", "problem": "p"}')),
        ":5: missing field(s) 'answer'",
    ),
    (
        "empty answer",
        "\n".join(_replace(_lines(), 6, '{"id": "5", "problem": "", "answer": 5}')),
        ":6: missing field(s) 'problem'",
    ),
    (
        "duplicate id",
        "\n".join(_replace(_lines(), 7, json.dumps({"id": "3", "problem": "p", "answer": 1}))),
        ":7: duplicate id '3' (first seen at 4)",
    ),
    ("truncated last line", "\n".join(_lines())[:-12], ":30: invalid JSON"),
    ("not an object", "\n".join(_replace(_lines(), 2, "[1, 2]")), ":2: expected a JSON object"),
    (
        "fractional answer as text",
        "\n".join(_replace(_lines(), 8, json.dumps({"id": "7", "problem": "p", "answer": "25.7"}))),
        ":8: answer '25.7' is not an integer (this task's answers are integers); fix that row",
    ),
    (
        "fractional answer as a number",  # int(25.7) would have stored gold "25"
        "\n".join(_replace(_lines(), 8, json.dumps({"id": "7", "problem": "p", "answer": 25.7}))),
        ":8: answer 25.7 is not an integer",
    ),
    (
        "word answer",
        "\n".join(_replace(_lines(), 3, json.dumps({"id": "2", "problem": "p", "answer": "twelve"}))),
        ":3: answer 'twelve' is not an integer",
    ),
    ("empty file", "", ": file is empty"),
    ("blank lines only", "\n\n  \n", ": file is empty"),
    ("count mismatch", "\n".join(_lines(29)) + "\n", ": expected 30 problems, found 29"),
]


@pytest.mark.parametrize("case, content, fragment", BAD_AIME25_FILES, ids=[c[0] for c in BAD_AIME25_FILES])
def test_bad_jsonl_names_file_line_and_problem(case, content, fragment, tmp_path):
    path = tmp_path / "aime25.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        get_task("aime25").load(tmp_path)
    message = str(caught.value)
    assert f"{path}{fragment}" in message
    assert "\n" not in message


@pytest.mark.parametrize("answer", [25, 25.0, "25", "025", " 25 ", "25.0", "+25"])
def test_integer_answers_in_any_spelling_give_the_gold_25(tmp_path, answer):
    lines = _replace(_lines(), 8, json.dumps({"id": "7", "problem": "p", "answer": answer}))
    (tmp_path / "aime25.jsonl").write_text("\n".join(lines), encoding="utf-8")
    assert get_task("aime25").load(tmp_path)[7].gold == "25"


def test_a_good_file_without_trailing_newline_loads(tmp_path):
    (tmp_path / "aime25.jsonl").write_text("\n".join(_lines()), encoding="utf-8")
    assert len(get_task("aime25").load(tmp_path)) == 30


def test_wrong_zip_password(data_dir):
    path = data_dir / "gpqa" / "dataset.zip"
    with pytest.raises(
        DataError, match=r"dataset\.zip: cannot decrypt dataset/gpqa_diamond\.csv .*wrong password"
    ):
        read_csv_in_zip(path, ZIP_MEMBER, "not-the-password", GPQA_SPEC)


def test_zip_without_the_member(data_dir):
    path = data_dir / "gpqa" / "dataset.zip"
    with pytest.raises(DataError, match=r"dataset\.zip: no member dataset/nope\.csv"):
        read_csv_in_zip(path, "dataset/nope.csv", "deserted-untie-orchid", GPQA_SPEC)


def test_not_a_zip(tmp_path):
    (tmp_path / "gpqa").mkdir()
    (tmp_path / "gpqa" / "dataset.zip").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"gpqa/dataset\.zip: cannot decrypt"):
        get_task("gpqa_diamond").load(tmp_path)


def test_missing_local_file_says_where_it_looked_and_the_fix(tmp_path):
    with pytest.raises(DataError) as caught:
        get_task("math500").load(tmp_path)
    message = str(caught.value)
    assert f"no {tmp_path / 'math500.jsonl'}" in message
    assert "offline mode" in message  # the Hub was not reachable (tests run with HF_HUB_OFFLINE=1)
    assert "--data-dir" in message and "EVALKIT_DATA_DIR" in message


def test_no_data_folder_at_all(monkeypatch):
    monkeypatch.delenv("EVALKIT_DATA_DIR", raising=False)
    with pytest.raises(
        DataError, match="no local data folder .*HuggingFaceH4/aime_2024.*Fix: pass --data-dir"
    ):
        get_task("aime24").load()


def _fake_datasets(load_dataset) -> types.ModuleType:
    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset
    return module


def test_gated_hub_failure_explains_how_to_log_in(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise ConnectionError("401 Client Error: access to this dataset is restricted")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setitem(__import__("sys").modules, "datasets", _fake_datasets(refuse))
    with pytest.raises(DataError) as caught:
        get_task("gpqa_diamond").load(tmp_path)
    message = str(caught.value)
    assert "Idavidrein/gpqa@633f5ee89ab8" in message and "ConnectionError: 401" in message
    assert "accept its terms" in message and "huggingface-cli login" in message and "HF_TOKEN" in message


def test_hub_rows_are_validated_and_the_revision_is_pinned(monkeypatch):
    calls = []

    def short_table(repo, config, split, revision):
        calls.append((repo, config, split, revision))
        return [{"id": str(i), "problem": "p", "answer": "1"} for i in range(29)]

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setitem(__import__("sys").modules, "datasets", _fake_datasets(short_table))
    source = HubSource("math-ai/aime25", "563bb8404243c5f09de6ec262f2db674fe5bce9b", split="test")
    with pytest.raises(DataError, match=r"Hub math-ai/aime25@563bb8404243: expected 30 problems, found 29"):
        read_hub(source, RowSpec(required=("id", "problem", "answer"), id_field="id", expected_count=30))
    assert calls == [("math-ai/aime25", None, "test", "563bb8404243c5f09de6ec262f2db674fe5bce9b")]


@pytest.mark.parametrize(
    "explicit, env, expected",
    [
        ("/x/explicit", "/y/env", Path("/x/explicit")),
        (Path("/x/explicit"), None, Path("/x/explicit")),
        (None, "/y/env", Path("/y/env")),
        ("", "/y/env", Path("/y/env")),
        (None, None, None),
        (None, "", None),
    ],
)
def test_resolve_data_dir(explicit, env, expected, monkeypatch):
    if env is None:
        monkeypatch.delenv("EVALKIT_DATA_DIR", raising=False)
    else:
        monkeypatch.setenv("EVALKIT_DATA_DIR", env)
    assert resolve_data_dir(explicit) == expected
