"""The replay backend's file: evalkit completions or the simple form, torn tails, one-line errors."""

from __future__ import annotations

import json

import pytest

from evalkit.core.errors import EvalkitError
from evalkit.core.types import GenerationRequest, SamplingParams
from model_backends.replay import ReplayBackend, read_replay_file

ROW = {"problem_id": "p", "sample_index": 0, "text": "\\boxed{1}"}


def lines(*rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize(
    ("content", "keys"),
    [
        (lines(ROW, {**ROW, "sample_index": 1}), [("p", 0), ("p", 1)]),
        (lines(ROW) + '{"problem_id": "p", "sample_in', [("p", 0)]),  # torn tail of a killed writer
        (lines(ROW) + json.dumps({**ROW, "sample_index": 1}), [("p", 0), ("p", 1)]),  # no final newline
        (lines(ROW, {**ROW, "text": "second copy"}), [("p", 0)]),  # the first line of a sample wins
        (lines(ROW) + "\n\n", [("p", 0)]),
    ],
    ids=["plain", "torn tail", "unterminated last line", "duplicate", "blank lines"],
)
def test_what_a_replay_file_holds(tmp_path, content, keys):
    path = tmp_path / "r.jsonl"
    path.write_text(content)
    table = read_replay_file(path)
    assert list(table) == keys and table[("p", 0)]["text"] == "\\boxed{1}"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n" + lines(ROW), r"r\.jsonl:1 is not valid JSON"),
        (lines({"problem_id": "p", "text": "x"}), r"r\.jsonl:1 lacks sample_index"),
        (lines(ROW, {**ROW, "finish_reason": "done"}), r"r\.jsonl:2 has finish_reason \"done\"; use one of"),
        (lines({**ROW, "sample_index": "x"}), r':1 has sample_index "x"; it must be an integer >= 0'),
        (lines({**ROW, "sample_index": 1.5}), r":1 has sample_index 1\.5; it must be an integer"),
        (lines({**ROW, "sample_index": -1}), r":1 has sample_index -1; it must be an integer >= 0"),
        (lines({**ROW, "sample_index": True}), r":1 has sample_index true; it must be an integer"),
        (lines([1, 2]), r":1 is not a JSON object \(got list\)"),
        (lines("just text"), r":1 is not a JSON object \(got str\)"),
        (lines({**ROW, "text": None}), r':1 has text null; it must be a string \(write "" for an empty'),
        (lines({**ROW, "text": 7}), r":1 has text 7; it must be a string"),
        (lines({**ROW, "problem_id": None}), r":1 has problem_id null; it must be a string"),
        (lines({**ROW, "num_generated_tokens": "many"}), r':1 has num_generated_tokens "many"'),
        (lines({**ROW, "seconds": float("nan")}), r":1 has seconds NaN; it must be a finite number"),
        (lines({**ROW, "extra": [1]}), r":1 has extra \[1\]; it must be a JSON object"),
        (lines(ROW).encode() + b'{"problem_id": "caf\xe9"}\n', r"r\.jsonl:2 is not UTF-8 text \(byte 0xe9\)"),
    ],
)
def test_bad_lines_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(EvalkitError, match=message) as info:
        read_replay_file(path)
    assert "\n" not in str(info.value)


def test_a_missing_sample_fails_before_any_sample_is_replayed(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(lines(ROW, {**ROW, "problem_id": "q"}))
    requests = [GenerationRequest(pid, (), (0, 1), (1, 2), SamplingParams()) for pid in ("p", "q")]
    got = []
    with pytest.raises(
        EvalkitError, match=r"lacks 2 of the 4 requested samples \(sample 1 of 'p', sample 1 of"
    ):
        got.extend(ReplayBackend(path).generate(requests))
    assert got == []  # all or nothing: a folder is never left half-filled by a file that lacks samples


def test_replayed_completions_keep_the_stored_fields(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(lines({**ROW, "finish_reason": "length", "num_generated_tokens": 9, "seconds": 1.5}))
    request = GenerationRequest("p#0", (), (0,), (1,), SamplingParams())
    [completion] = ReplayBackend(path).generate([request])
    assert (completion.request_id, completion.finish_reason, completion.num_generated_tokens) == (
        "p#0",
        "length",
        9,
    )
    assert completion.seconds == 1.5 and completion.num_prompt_tokens == 0
