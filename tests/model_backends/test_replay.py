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
        (lines({"problem_id": "p", "text": "x"}), "line 1 lacks sample_index"),
        (lines({**ROW, "finish_reason": "done"}), "line 1 has finish_reason 'done'"),
    ],
)
def test_bad_lines_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    path.write_text(content)
    with pytest.raises(EvalkitError, match=message) as info:
        read_replay_file(path)
    assert "\n" not in str(info.value)


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
