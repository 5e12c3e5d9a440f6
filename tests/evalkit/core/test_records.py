"""The typed run records read and write today's files byte for byte (fixture lines in the format evalkit
0.1 writes: a sambay sample, a GPQA sample with its permutation, LaTeX and non-ASCII text)."""

from __future__ import annotations

import json

import pytest

from evalkit.core.errors import DataError
from evalkit.core.files import json_line
from evalkit.core.records import (
    CheckerSpec,
    CompletionRecord,
    Provenance,
    Results,
    RunHeader,
    ScoreRecord,
)

COMPLETION_LINES = [
    # sambay demo sample: engine extras, a float of full precision
    '{"problem_id": "arith-000", "sample_index": 0, "seed": 4422583877659837043, "prompt_hash": '
    '"95a40dd320259928", "text": "efefefef", "num_prompt_tokens": 82, "num_generated_tokens": 48, '
    '"finish_reason": "length", "seconds": 0.19798215800005892, "gold": "4", "permutation": null, '
    '"extra": {"seed": 4422583877659837043, "engine_tokens_per_second": 3854.41}}\n',
    # GPQA: per-sample gold letter and option permutation
    '{"problem_id": "rec06pnAkLOr2t2mp", "sample_index": 2, "seed": 6703698394113545386, "prompt_hash": '
    '"06231082f1332359", "text": "\\\\boxed{C}", "num_prompt_tokens": 0, "num_generated_tokens": 5, '
    '"finish_reason": "stop", "seconds": 0.0, "gold": "C", "permutation": [3, 1, 0, 2], "extra": {}}\n',
    # MATH-500: LaTeX with escapes, non-ASCII kept as is, an integer `seconds` from a backend
    '{"problem_id": "test/precalculus/807.json", "sample_index": 1, "seed": 1, "prompt_hash": "68cb16777ec8d07c", '
    '"text": "π ≈ 3.14 — \\\\boxed{\\\\left( 3, \\\\frac{\\\\pi}{2} \\\\right)}\\n", "num_prompt_tokens": 0, '
    '"num_generated_tokens": 100, "finish_reason": "error", "seconds": 2, "gold": '
    '"\\\\left( 3, \\\\frac{\\\\pi}{2} \\\\right)", "permutation": null, "extra": {"error": "x", "usage": null}}\n',
]

SCORE_LINES = [
    '{"problem_id": "rec06pnAkLOr2t2mp", "sample_index": 2, "correct": true, "extracted": "C", "reason": '
    '"match", "gold": "C", "finish_reason": "stop", "num_generated_tokens": 5, "permutation": [3, 1, 0, 2]}\n',
    '{"problem_id": "arith-003", "sample_index": 0, "correct": false, "extracted": null, "reason": '
    '"truncated_thinking", "gold": "17", "finish_reason": "length", "num_generated_tokens": 24, '
    '"permutation": null}\n',
]

CONFIG = {
    "model": "tiny-sambay",
    "model_revision": "c3b5a28a50583aae",
    "backend": "sambay",
    "task": "arith-demo",
    "data_fingerprint": "6c7beeb6a06ad8d234a152e0d7860affca3f755a8448139462babf869f3fb72c",
    "prompt_name": "official",
    "prompt_hash": "879fd092d03b7232",
    "n": 4,
    "temperature": 0.6,
    "top_p": 0.95,
    "max_new_tokens": 48,
    "seed": 0,
    "checker_version": "1",
    "limit": None,
}
# config.json as evalkit 0.1 wrote it (no "checker"), and as it writes it now
HEADER_OLD = {
    "schema_version": 1,
    "run_id": "8c3e7f695687b0a4",
    "config": CONFIG,
    "created": "2026-12-04T20:36:24+00:00",
    "problems": [{"id": "arith-000"}, {"id": "rec1", "domain": "Physics", "subdomain": "Optics"}],
}
HEADER_NEW = {**HEADER_OLD, "checker": {"answer_type": "integer"}}
PROVENANCE = {
    "software": {"evalkit": "0.1.0", "git": {"commit": "1e91760c", "dirty": False}, "vllm": None},
    "machine": {"hostname": "vm", "device": {"torch_loaded": False}},
    "model_info": {"backend": "seeded-test", "model": "seeded-test"},
    "started": None,
    "ended": "2026-12-04T20:36:24+00:00",
    "wall_seconds": None,
    "generated_tokens": 4815,
    "shard": "1/2",
    "scoring": {"checker_version": "1", "mode": "evalkit", "scored": 120, "at": "2026-12-04T20:36:24+00:00"},
    "merged_from": ["/tmp/a/4ca2afb474fa11b4"],
    "generated_this_session": 60,
}
RESULTS = {
    "schema_version": 1,
    "run_id": "8c3e7f695687b0a4",
    "config": CONFIG,
    "provenance": PROVENANCE,
    "final": True,
    "metrics": {
        "task": "arith-demo",
        "n": 4,
        "pass_at_1": 58.333333333333336,
        "ci95": [47.5, 69.16666666666667],
    },
}


def _file_text(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"  # how config.json / results.json are written


@pytest.mark.parametrize("line", COMPLETION_LINES)
def test_completion_lines_round_trip_byte_for_byte(line):
    record = CompletionRecord.from_dict(json.loads(line))
    assert json_line(record.to_dict()) == line
    assert record.key == (json.loads(line)["problem_id"], json.loads(line)["sample_index"])


@pytest.mark.parametrize("line", SCORE_LINES)
def test_score_lines_round_trip_byte_for_byte(line):
    assert json_line(ScoreRecord.from_dict(json.loads(line)).to_dict()) == line


def test_permutations_are_tuples_in_memory_and_lists_on_disk():
    record = CompletionRecord.from_dict(json.loads(COMPLETION_LINES[1]))
    assert record.permutation == (3, 1, 0, 2) and record.to_dict()["permutation"] == [3, 1, 0, 2]


def test_scores_written_before_the_permutation_existed_still_read():
    old = {k: v for k, v in json.loads(SCORE_LINES[1]).items() if k != "permutation"}
    assert ScoreRecord.from_dict(old).permutation is None


@pytest.mark.parametrize("missing", ["text", "seed", "permutation", "extra"])
def test_a_completion_without_a_field_is_a_data_error(missing):
    data = {k: v for k, v in json.loads(COMPLETION_LINES[0]).items() if k != missing}
    with pytest.raises(DataError, match=f"the completion record lacks {missing}"):
        CompletionRecord.from_dict(data)


@pytest.mark.parametrize("header", [HEADER_OLD, HEADER_NEW], ids=["without checker", "with checker"])
def test_config_json_round_trips(header):
    parsed = RunHeader.from_dict(json.loads(_file_text(header)))
    assert _file_text(parsed.to_dict()) == _file_text(header)
    assert parsed.config.run_id == "8c3e7f695687b0a4"  # the run id never included the checker section
    assert parsed.checker == (CheckerSpec("integer") if "checker" in header else None)


def test_results_json_round_trips_with_session_notes_after_the_fixed_keys():
    parsed = Results.from_dict(json.loads(_file_text(RESULTS)))
    assert _file_text(parsed.to_dict()) == _file_text(RESULTS)
    assert parsed.provenance.scoring.scored == 120
    assert parsed.provenance.extra == {
        "merged_from": ["/tmp/a/4ca2afb474fa11b4"],
        "generated_this_session": 60,
    }


def test_hand_written_provenance_keeps_what_it_has():
    provenance = Provenance.from_dict({"evalkit": "0.1.0", "backend": "replay"})
    assert provenance.scoring is None and provenance.extra == {"evalkit": "0.1.0", "backend": "replay"}


@pytest.mark.parametrize("checker", [{}, {"answer_type": "text"}, "integer"])
def test_a_bad_checker_section_is_a_data_error(checker):
    with pytest.raises(DataError, match="answer_type"):
        CheckerSpec.from_dict(checker)
