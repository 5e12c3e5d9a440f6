"""Run folder IO: atomic writes, fsync'd appends, torn-tail tolerance, dedup, config guard, shard parsing."""

from __future__ import annotations

import json

import pytest

from evalkit.core.errors import DataError, EvalkitError
from evalkit.core.files import JsonlAppender, read_jsonl, write_json_atomic
from evalkit.core.identity import content_hash
from evalkit.core.records import CheckerSpec, CompletionRecord
from evalkit.core.run_config import RunConfig, Shard, parse_shard
from evalkit.core.run_folder import RunFolder, completions_file_name
from evalkit.planning import model_identity

CONFIG = RunConfig(
    model="m",
    model_revision="r",
    backend="replay",
    task="arith-demo",
    data_fingerprint="f",
    prompt_name="official",
    prompt_hash="h",
    n=2,
    temperature=0.6,
    top_p=0.95,
    max_new_tokens=100,
    seed=0,
)
CHECKER = CheckerSpec("integer")


@pytest.mark.parametrize(
    ("content", "expected", "torn"),
    [
        ("", [], False),
        ('{"a": 1}\n', [{"a": 1}], False),
        ('{"a": 1}\n{"a": 2}\n', [{"a": 1}, {"a": 2}], False),
        ('{"a": 1}\n{"a": 2', [{"a": 1}], True),  # killed mid-write
        ('{"a": 1}\n{"a": 2}', [{"a": 1}], True),  # complete JSON but no newline: the write was cut
        ('{"a": 1}\n\n{"a": 3}\n', [{"a": 1}, {"a": 3}], False),  # blank lines are skipped
    ],
)
def test_read_jsonl_drops_only_a_torn_tail(tmp_path, content, expected, torn):
    path = tmp_path / "x.jsonl"
    path.write_text(content)
    assert read_jsonl(path) == (expected, torn)


def test_bad_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{oops\n{"a": 3}\n')
    with pytest.raises(DataError, match=r"x\.jsonl:2 is not valid JSON"):
        read_jsonl(path)


def test_appender_repairs_torn_tail_then_appends(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "te')
    with JsonlAppender(path) as out:
        assert out.dropped_torn_line
        out.append({"a": 3})
    assert path.read_text() == '{"a": 1}\n{"a": 3}\n'


def test_atomic_json_leaves_no_temp_files(tmp_path):
    write_json_atomic(tmp_path / "r.json", {"x": 1})
    write_json_atomic(tmp_path / "r.json", {"x": 2})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_config_guard_names_the_differing_fields(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.initialise(CONFIG, [{"id": "a"}], checker=CHECKER)
    folder.initialise(CONFIG, [{"id": "a"}], checker=CHECKER)  # same config: accepted, unchanged
    other = RunConfig(**{**CONFIG.to_dict(), "temperature": 0.7, "n": 4})
    with pytest.raises(EvalkitError, match=r"n: 2 -> 4; temperature: 0.6 -> 0.7"):
        folder.initialise(other, [{"id": "a"}], checker=CHECKER)


def completion(pid: str, idx: int, text: str) -> CompletionRecord:
    return CompletionRecord(pid, idx, 7, "h", text, 3, 4, "stop", 0.5, "1", None, {})


def test_completions_are_read_once_across_shard_files(tmp_path):
    folder = RunFolder(tmp_path)
    folder.initialise(CONFIG, [], checker=CHECKER)
    rows = {
        "completions.jsonl": [("a", 0, "main")],
        "completions.shard-1-of-2.jsonl": [("a", 0, "dup"), ("a", 1, "s1")],
        "completions.shard-2-of-2.jsonl": [("b", 0, "s2")],
    }
    for name, records in rows.items():
        with JsonlAppender(tmp_path / name) as out:
            for pid, idx, text in records:
                out.append(completion(pid, idx, text).to_dict())
    got = [(r.problem_id, r.sample_index, r.text) for r in folder.completions()]
    assert got == [("a", 0, "main"), ("a", 1, "s1"), ("b", 0, "s2")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, Shard(1, 1)), ("1/2", Shard(1, 2)), ("2/2", Shard(2, 2)), (" 3 / 8 ", Shard(3, 8))],
)
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "2", "a/b", "1/2/3", "-1/2"])
def test_parse_shard_rejects(text):
    with pytest.raises(EvalkitError, match="--shard"):
        parse_shard(text)


@pytest.mark.parametrize(
    ("shard", "kept"), [(Shard(1, 2), [0, 2, 4]), (Shard(2, 2), [1, 3]), (Shard(), [0, 1, 2, 3, 4])]
)
def test_shard_keeps_positions(shard, kept):
    assert [p for p in range(5) if shard.keeps(p)] == kept
    assert completions_file_name(shard).startswith("completions")


def test_run_id_changes_with_every_field():
    ids = {CONFIG.run_id}
    for name, value in CONFIG.to_dict().items():
        changed = {**CONFIG.to_dict(), name: (value + 1) if isinstance(value, (int, float)) else f"{value}x"}
        if name == "limit":
            changed[name] = 5
        ids.add(RunConfig(**changed).run_id)
    assert len(ids) == len(CONFIG.to_dict()) + 1


def test_local_model_identity_is_content_hashed(tmp_path):
    ckpt = tmp_path / "my-model"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"hidden": 8}')
    (ckpt / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}" + b"\0" * 16)
    name, revision = model_identity("hf", str(ckpt), None, None)
    assert (name, revision) == ("my-model", content_hash(ckpt))
    (ckpt / "config.json").write_text('{"hidden": 16}')
    assert model_identity("hf", str(ckpt), None, None)[1] != revision
    assert model_identity("hf", str(ckpt), "abc", None) == ("my-model", "abc")
    assert model_identity("openai", "served-name", None, None) == ("served-name", "none")
    with pytest.raises(EvalkitError, match="no such folder"):
        model_identity("hf", str(tmp_path / "missing" / "x"), None, None)


def test_a_second_writer_of_the_same_file_is_refused(tmp_path):
    path = tmp_path / "completions.jsonl"
    with JsonlAppender(path) as first:
        first.append({"a": 1})
        with pytest.raises(EvalkitError, match="another evalkit process is writing"):
            JsonlAppender(path)
        first.append({"a": 2})
    with JsonlAppender(path) as again:  # released on close
        again.append({"a": 3})
    assert read_jsonl(path) == ([{"a": 1}, {"a": 2}, {"a": 3}], False)
