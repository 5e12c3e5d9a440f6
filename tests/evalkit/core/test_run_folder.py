"""RunFolder, the one reader of a run folder: torn tails, shard files, bad lines, schema versions and
folders written before config.json held the checker section."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from evalkit.core.errors import DataError
from evalkit.core.files import json_line
from evalkit.core.records import CheckerSpec, CompletionRecord, Provenance, Results, ScoreRecord
from evalkit.core.run_config import RunConfig, Shard
from evalkit.core.run_folder import RunFolder
from tests.evalkit.core.test_records import CONFIG, HEADER_OLD

RUN_CONFIG = RunConfig.from_dict(CONFIG)


def sample(pid: str, index: int, text: str = "t") -> CompletionRecord:
    return CompletionRecord(pid, index, 11, "h", text, 5, 6, "stop", 0.25, "4", None, {})


@pytest.fixture
def folder(tmp_path) -> RunFolder:
    folder = RunFolder(tmp_path / "run")
    folder.initialise(RUN_CONFIG, [{"id": "a"}, {"id": "b"}], checker=CheckerSpec("integer"))
    return folder


def test_initialise_writes_the_header_once(folder):
    header = json.loads(folder.config_path.read_text())
    assert list(header) == ["schema_version", "run_id", "config", "created", "problems", "checker"]
    assert header["run_id"] == RUN_CONFIG.run_id and folder.checker() == CheckerSpec("integer")
    before = folder.config_path.read_text()
    folder.initialise(RUN_CONFIG, [], checker=CheckerSpec("math"))  # same config: left as it is
    assert folder.config_path.read_text() == before


def test_written_completions_read_back_equal(folder):
    with folder.appender(Shard()) as out:
        for record in (sample("a", 0), sample("a", 1, "π")):
            out.append(record)
    assert folder.completions() == [sample("a", 0), sample("a", 1, "π")]
    assert (folder.path / "completions.jsonl").read_text() == json_line(sample("a", 0).to_dict()) + json_line(
        sample("a", 1, "π").to_dict()
    )


@pytest.mark.parametrize("cut", [1, 40, -1], ids=["one byte", "mid-line", "all but the newline"])
def test_a_torn_last_line_is_ignored_then_dropped_by_the_next_writer(folder, cut):
    path = folder.path / "completions.jsonl"
    whole = json_line(sample("b", 0).to_dict())
    path.write_text(json_line(sample("a", 0).to_dict()) + whole[:cut])
    assert folder.completions() == [sample("a", 0)]
    with folder.appender(Shard()) as out:
        out.append(sample("b", 0))
    assert path.read_text() == json_line(sample("a", 0).to_dict()) + whole


def test_shard_files_each_get_a_writer_and_are_read_in_name_order(folder):
    for shard, records in (
        (Shard(2, 2), [sample("b", 0, "s2"), sample("a", 0, "dup")]),
        (Shard(1, 2), [sample("a", 0, "s1")]),
    ):
        with folder.appender(shard) as out:
            for record in records:
                out.append(record)
    names = [p.name for p in folder.completion_files()]
    assert names == ["completions.shard-1-of-2.jsonl", "completions.shard-2-of-2.jsonl"]
    assert [(r.problem_id, r.text) for r in folder.completions()] == [("a", "s1"), ("b", "s2")]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            json.dumps({k: v for k, v in sample("a", 1).to_dict().items() if k != "gold"}),
            "the completion record lacks gold",
        ),
        ("[1, 2]", "a completion record must be a JSON object, got list"),
        (json.dumps({**sample("a", 1).to_dict(), "permutation": 3}), "int"),
    ],
    ids=["missing field", "not an object", "bad permutation"],
)
def test_a_malformed_record_names_its_file_and_line(folder, line, message):
    path = folder.path / "completions.jsonl"
    path.write_text(json_line(sample("a", 0).to_dict()) + line + "\n")
    with pytest.raises(DataError, match=rf"completions\.jsonl:2: .*{message}") as info:
        folder.completions()
    assert "\n" not in str(info.value)


def test_scores_and_results_round_trip(folder):
    scores = [
        ScoreRecord("a", 0, True, "4", "match", "4", "stop", 6),
        ScoreRecord("a", 1, False, None, "no_answer", "4", "length", 9, (1, 0)),
    ]
    folder.write_scores(scores)
    assert folder.scores() == scores
    results = Results(1, RUN_CONFIG.run_id, RUN_CONFIG, Provenance(generated_tokens=15), True, {"n": 4})
    folder.write_results(results)
    assert folder.results() == results and folder.has_results()
    assert replace(folder.results(), final=False) != results


def test_a_folder_from_before_the_checker_section_still_reads(tmp_path):
    old = RunFolder(tmp_path / "old")
    old.path.mkdir()
    old.config_path.write_text(json.dumps(HEADER_OLD, indent=2) + "\n")
    assert old.checker() is None and old.config() == RUN_CONFIG
    assert [p["id"] for p in old.problems()] == ["arith-000", "rec1"]


def test_an_unsupported_schema_version_is_a_one_line_error(tmp_path):
    future = RunFolder(tmp_path / "future")
    future.path.mkdir()
    future.config_path.write_text(json.dumps({**HEADER_OLD, "schema_version": 2}))
    with pytest.raises(DataError, match="schema_version 2 is not supported by this evalkit") as info:
        future.config()
    assert "\n" not in str(info.value)
    assert future.header_dict()["schema_version"] == 2  # reports can still show what it says
