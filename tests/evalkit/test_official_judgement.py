"""The official judgement beside ours: stored in every scoring pass without touching our verdicts,
metrics.official, --strict-thinking recorded and applied, old folders (checker in the run_id, scores
without the new fields) still load, resume and re-score, leaderboard --judgement, the report's list of
samples the two judgements judge differently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.core.records import ScoreRecord
from evalkit.core.run_folder import RunFolder
from evalkit.core.types import stable_hash
from evalkit.metrics import compute_metrics, pass_at_k
from evalkit.scoring import CHECKER_VERSION, ScoreItem, score_both, score_many
from tests.evalkit.compare_helpers import ARITH, cli

G0, G1 = ARITH[0].gold, ARITH[1].gold
# problem 0: after the thinking; in the thinking only (nothing after </think>); a decimal spelling
# (ours: equal; the official judgement refuses any decimal); a wrong answer.
TEXTS = {
    (0, 0): f"<think>Adding up.</think> The answer is \\boxed{{{G0}}}.",
    (0, 1): f"<think>Adding up, so the total is \\boxed{{{G0}}}.</think>",
    (0, 2): f"<think>Adding up.</think> The answer is \\boxed{{{G0}.0}}.",
    (0, 3): f"<think>Adding up.</think> The answer is \\boxed{{{int(G0) + 1}}}.",
    (1, 0): f"<think>Adding up.</think> The answer is \\boxed{{{G1}}}.",
    (1, 1): f"<think>Adding up.</think> The answer is \\boxed{{{G1}}}.",
    (1, 2): f"<think>Adding up, so the total is \\boxed{{{G1}}}.</think>",
    (1, 3): "<think>Adding up, and up, and up",  # cut off inside the thinking
}


def _replay(path: Path) -> Path:
    lines = [
        {"problem_id": ARITH[i].id, "sample_index": j, "text": text, "num_generated_tokens": 9}
        for (i, j), text in TEXTS.items()
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _run(tmp_path: Path, *extra: str, name: str = "run") -> RunFolder:
    replay = _replay(tmp_path / "replay.jsonl")
    run_dir = tmp_path / name
    code, _, err = cli(
        "run", "--backend", "replay", "--from", str(replay), "--task", "arith-demo", "--n", "4",
        "--limit", "2", "--run-dir", str(run_dir), "--workers", "1", *extra,
    )  # fmt: skip
    assert code == 0, err
    return RunFolder(run_dir)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> RunFolder:
    return _run(tmp_path_factory.mktemp("official"))


def _by_key(folder: RunFolder) -> dict[tuple[int, int], ScoreRecord]:
    return {(int(s.problem_id[-3:]), s.sample_index): s for s in folder.scores()}


def test_score_both_gives_score_many_verdicts_and_the_official_ones_beside():
    items = [ScoreItem(ARITH[i].gold, text, "integer") for (i, _), text in TEXTS.items()]
    items.append(ScoreItem("B", "<think>hm</think> The answer is \\boxed{B}", "choice"))
    ours, official = score_both(items, workers=1)
    assert ours == score_many(items, workers=1)  # the official judgement never touches ours
    assert official[-1] is None  # multiple choice: no official judgement
    assert [o.correct for o in official[:-1]] == [True, True, False, False, True, True, True, False]
    assert [v.correct for v in ours[:-1]] == [True, True, True, False, True, True, True, False]
    assert official[2].reason == "mismatch" and ours[2].reason == "match"  # G0.0: a decimal


def test_every_scoring_pass_stores_the_official_judgement_beside_ours(folder):
    scores = _by_key(folder)
    assert scores[(0, 1)].reason == "answer_in_thinking" and scores[(0, 1)].source == "thinking"
    assert scores[(0, 0)].source == "answer" and scores[(1, 3)].source is None
    assert [scores[(0, j)].official for j in range(4)] == [True, True, False, False]
    assert scores[(0, 2)].correct and scores[(0, 2)].official_reason == "mismatch"
    assert scores[(0, 2)].official_extracted is not None
    m = folder.results().metrics
    assert m["pass_at_1"] == pytest.approx(100 * (3 / 4 + 3 / 4) / 2)
    official = m["official"]
    assert official["pass_at_1"] == pytest.approx(100 * (2 / 4 + 3 / 4) / 2)
    assert official["disagreements"] == 1
    assert official["pass_at_k"]["2"] == pytest.approx(100 * (pass_at_k(4, 2, 2) + pass_at_k(4, 3, 2)) / 2)
    assert m["answer_in_thinking_rate"] == pytest.approx(100 * 2 / 8)
    assert m["no_answer_rate"] == pytest.approx(100 * 1 / 8)
    assert [p["official_correct"] for p in m["per_problem"]] == [2, 3]
    scoring = folder.results().provenance.scoring
    assert scoring.options == {"strict_thinking": False} and scoring.checker_version == CHECKER_VERSION


def _record(pid: str, index: int, correct: bool, official: bool | None, **extra) -> dict:
    return {
        "problem_id": pid, "sample_index": index, "correct": correct, "extracted": "1", "reason": "match",
        "gold": "1", "finish_reason": "stop", "num_generated_tokens": 5, "official": official, **extra,
    }  # fmt: skip


def test_metrics_official_by_hand():
    table = {
        "a": [(True, True), (True, False)],
        "b": [(False, True), (False, True)],
        "c": [(True, False)] * 2,
    }
    records = [_record(p, j, c, o) for p, rows in table.items() for j, (c, o) in enumerate(rows)]
    records[0]["source"] = "thinking"
    m = compute_metrics(records, task="t", n=2, n_bootstrap=50)
    accs = [0.5, 1.0, 0.0]
    official = m["official"]
    assert official["pass_at_1"] == pytest.approx(100 * sum(accs) / 3)
    mean = sum(accs) / 3
    stderr = (sum((a - mean) ** 2 for a in accs) / 2) ** 0.5 / 3**0.5
    assert official["stderr"] == pytest.approx(100 * stderr)
    assert official["pass_at_k"] == {"1": pytest.approx(100 * mean), "2": pytest.approx(100 * 2 / 3)}
    assert official["disagreements"] == 5
    assert m["pass_at_1"] == pytest.approx(100 * (1 + 0 + 1) / 3)  # ours: from `correct` only
    assert m["answer_in_thinking_rate"] == pytest.approx(100 / 6)
    records[3]["official"] = None  # one sample without it: no official figure rather than a wrong one
    assert compute_metrics(records, task="t", n=2, n_bootstrap=50)["official"] is None
    choice = compute_metrics(records[:2], task="t", n=2, answer_type="choice", n_bootstrap=50)
    assert choice["official"] is None


def test_strict_thinking_is_recorded_and_changes_in_thinking_verdicts(tmp_path):
    strict = _run(tmp_path, "--strict-thinking", name="strict")
    header = json.loads(strict.config_path.read_text())
    assert header["checker"]["options"] == {"strict_thinking": True}
    assert strict.results().provenance.scoring.options == {"strict_thinking": True}
    scores = _by_key(strict)
    assert scores[(0, 1)].correct is False and scores[(0, 1)].reason == "no_answer"
    assert scores[(0, 1)].official is True  # the official judgement has no options
    assert strict.results().metrics["answer_in_thinking_rate"] == 0.0
    # `evalkit score` keeps the folder's recorded options unless told otherwise
    assert cli("score", str(strict.path), "--workers", "1")[0] == 0
    assert _by_key(strict)[(0, 1)].correct is False
    code, _, err = cli("score", str(strict.path), "--no-strict-thinking", "--workers", "1")
    assert code == 0, err
    assert _by_key(strict)[(0, 1)].reason == "answer_in_thinking"
    assert strict.results().provenance.scoring.options == {"strict_thinking": False}
    assert json.loads(strict.config_path.read_text()) == header  # config.json is never rewritten
    # the checker options are not part of the run_id
    plain = _run(tmp_path, name="plain")
    assert plain.header().run_id == strict.header().run_id


def test_score_mode_is_refused_and_writes_nothing(folder):
    before = folder.results_path.read_bytes()
    code, _, err = cli("score", str(folder.path), "--mode", "lighteval")
    assert code == 2 and err.count("error:") == 1
    assert "results.json metrics.official" in err and "--judgement official" in err
    assert folder.results_path.read_bytes() == before


def _make_old_style(folder: RunFolder, root: Path, version: str) -> Path:
    """The folder as evalkit wrote it before: the checker version in the config and the run_id, a
    checker section with the answer type only, scores and metrics without the official judgement."""
    header = json.loads(folder.config_path.read_text())
    header["config"] = {**header["config"], "checker_version": version}
    items = list(header["config"].items())  # the old key order: checker_version before limit
    items.insert(len(items) - 2, items.pop())
    header["config"] = dict(items)
    header["run_id"] = stable_hash(header["config"])
    header["checker"] = {"answer_type": header["checker"]["answer_type"]}
    old = root / header["run_id"]
    old.mkdir(parents=True)
    (old / "config.json").write_text(json.dumps(header, indent=2))
    lines = (folder.path / "completions.jsonl").read_text().splitlines(keepends=True)
    (old / "completions.jsonl").write_text("".join(lines[:-2]))  # two samples still to generate
    new_fields = ("source", "official", "official_extracted", "official_reason")
    scores = [{k: v for k, v in s.to_dict().items() if k not in new_fields} for s in folder.scores()]
    (old / "scores.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scores[:-2]))
    results = folder.results().to_dict()
    results["config"], results["run_id"] = header["config"], header["run_id"]
    results["metrics"] = {k: v for k, v in results["metrics"].items() if k not in ("official",)}
    results["provenance"]["scoring"] = {"checker_version": version, "mode": "evalkit", "scored": 6, "at": "x"}
    (old / "results.json").write_text(json.dumps(results, indent=2))
    return old


@pytest.mark.parametrize("version", ["1", "2"])  # the checker versions that were hashed into run_ids
def test_an_old_style_folder_loads_resumes_and_rescores(folder, tmp_path, version):
    root = tmp_path / "results"
    old = RunFolder(_make_old_style(folder, root, version))
    assert old.header().config.legacy_checker_version == version
    assert old.scores()[0].official is None  # scores without the new fields read as None
    code, out, err = cli("leaderboard", str(root), "--judgement", "both", "--reference", "none")
    assert code == 0, err
    assert "| 75.0 [" in out and "| - |" in out  # no official judgement stored: shown as absent
    code, _, err = cli("report", str(old.path), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    assert "none stored" in (tmp_path / "rep" / "report.md").read_text()
    code, _, err = cli("compare", str(old.path), str(folder.path), "--allow-incomplete")
    assert code == 0, err
    # the same `evalkit run` (with --out) finds the folder under its old run_id and resumes it
    replay = _replay(tmp_path / "replay.jsonl")
    code, _, err = cli(
        "run", "--backend", "replay", "--from", str(replay), "--task", "arith-demo", "--n", "4",
        "--limit", "2", "--out", str(root), "--workers", "1",
    )  # fmt: skip
    assert code == 0, err
    assert [p.name for p in root.iterdir()] == [old.path.name]  # no second folder
    assert len(old.completions()) == 8
    results = old.results()
    assert results.run_id == old.path.name and results.final
    assert results.metrics["official"]["pass_at_1"] == folder.results().metrics["official"]["pass_at_1"]
    assert all(s.official is not None for s in old.scores())
    # `evalkit score` re-scores it in place (its config.json, and so its run_id, unchanged)
    before = old.config_path.read_bytes()
    assert cli("score", str(old.path), "--workers", "1")[0] == 0
    assert old.config_path.read_bytes() == before and old.header().run_id == old.path.name


def test_leaderboard_judgement_both_and_official(folder, tmp_path):
    code, out, err = cli("leaderboard", str(folder.path), "--judgement", "both", "--reference", "none")
    assert code == 0, err
    header, row = [line for line in out.splitlines() if line.startswith("|") and "---" not in line]
    cells = dict(
        zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")], strict=True)
    )
    assert cells["arith-demo"].startswith("75.0 [")
    assert cells["arith-demo official"] == "62.5" and cells["arith-demo official−ours"] == "-12.5"
    code, out, _ = cli("leaderboard", str(folder.path), "--judgement", "official", "--reference", "none")
    assert code == 0 and "| 62.5 [" in out
    code, out, _ = cli("leaderboard", str(folder.path), "--judgement", "official", "--format", "csv")
    assert code == 0 and ",62.5," in out
    code, _, err = cli("leaderboard", str(folder.path), "--judgement", "lighteval")
    assert code == 2 and "choose one of evalkit, official, both" in err


def test_report_lists_the_samples_the_judgements_differ_on(folder, tmp_path):
    from evalkit.report.loading import load_runs, read_samples
    from evalkit.report.sections import RunSection, differences_table

    code, _, err = cli("report", str(folder.path), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    html = (tmp_path / "rep" / "report.html").read_text()
    md = (tmp_path / "rep" / "report.md").read_text()
    for text in (html, md):
        assert "Where evalkit and the official judgement differ" in text
        assert "answer-in-thinking rate" in text and "official Pass@1" in text
    assert f"✓ {G0}.0 (match)" in html and "✗" in html and "(mismatch)" in html
    [run] = load_runs([folder.path])
    samples = read_samples(run)
    tail = "x" * 400 + "<script>alert(1)</script>"
    samples += [{**samples[2], "sample_index": 10 + k, "text": tail} for k in range(60)]
    (header, rows), more = differences_table(RunSection(run, samples))
    assert len(rows) == 50 and more == 11  # capped: the first 50 and a count of the rest
    assert header[-1] == "response (last 300 chars)" and rows[-1][-1] == "…" + tail[-300:]
    from evalkit.report.html import _differences

    rendered = "".join(_differences(RunSection(run, samples)))
    assert "<script>" not in rendered and "and 11 more samples" in rendered


def test_pool_and_merge_score_both_judgements_with_the_options_given(tmp_path):
    seeds = [_run(tmp_path, "--seed", str(seed), name=f"seed{seed}") for seed in (0, 1)]
    code, _, err = cli("pool", *(str(f.path) for f in seeds), "--out", str(tmp_path / "pooled"),
                       "--strict-thinking", "--workers", "1")  # fmt: skip
    assert code == 0, err
    [pooled] = [RunFolder(p) for p in (tmp_path / "pooled").iterdir()]
    assert pooled.checker().options == {"strict_thinking": True}  # the pooled folder records its options
    metrics = pooled.results().metrics
    assert metrics["official"]["pass_at_1"] == pytest.approx(62.5) and metrics["answer_in_thinking_rate"] == 0
    code, _, err = cli("merge", str(seeds[0].path), "--out", str(tmp_path / "merged"), "--strict-thinking",
                       "--workers", "1")  # fmt: skip
    assert code == 0, err
    [merged] = [RunFolder(p) for p in (tmp_path / "merged").iterdir()]
    assert merged.results().provenance.scoring.options == {"strict_thinking": True}
    assert merged.results().metrics["official"]["pass_at_1"] == pytest.approx(62.5)
