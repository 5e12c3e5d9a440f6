"""`evalkit pool`: seeds of one run become one run (n = the sum, samples renumbered), anything else refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit.core.run_folder import RunFolder
from tests.evalkit.compare_helpers import cli, replay_run

# The same replay file at three seeds: replay ignores the seed, so each seed's verdicts are the file's.
RIGHT = [4, 3, 2, 1, 0] * 6  # of 4 samples; Pass@1 = 50%


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pool")
    runs = {f"s{s}": replay_run(root / "runs", RIGHT, seed=s, name="m") for s in (2, 0, 1)}
    runs["hot"] = replay_run(root / "runs", RIGHT, seed=3, name="m", extra=("--temperature", "1.0"))
    runs["other"] = replay_run(root / "others", RIGHT[::-1], seed=4, name="o")  # another model
    runs["root"] = root
    return runs


def pooled_folder(said: str) -> Path:
    return Path(said.split(" into ", 1)[1].split(":", 1)[0])


def test_pool_renumbers_samples_and_sums_n(seeds) -> None:
    out = seeds["root"] / "pooled"
    code, said, err = cli(
        "pool", str(seeds["s2"]), str(seeds["s0"]), str(seeds["s1"]), "--out", str(out), "--workers", "1"
    )
    assert code == 0, err
    assert "pooled 3 runs (seeds 0, 1, 2)" in said and "n = 12 per problem, 360 samples added" in said
    folder = RunFolder(pooled_folder(said))
    assert folder.path.parent == out
    stored = json.loads(folder.config_path.read_text())["config"]
    assert (stored["seed"], stored["n"]) == ([0, 1, 2], 12)  # config.json keeps a JSON list
    config = folder.config()
    assert (config.seed, config.seeds, config.is_pooled) == ((0, 1, 2), (0, 1, 2), True)
    assert folder.path.name == config.run_id == folder.header().run_id
    source = RunFolder(seeds["s0"]).config().to_dict()
    assert {k: v for k, v in config.to_dict().items() if k not in ("seed", "n")} == {
        k: v for k, v in source.items() if k not in ("seed", "n")
    }
    records = folder.completions()
    by_problem: dict[str, list[int]] = {}
    for record in records:
        by_problem.setdefault(record.problem_id, []).append(record.sample_index)
    assert (
        all(sorted(indices) == list(range(12)) for indices in by_problem.values()) and len(by_problem) == 30
    )
    # seed s's sample j is sample 4 * s + j (seeds in ascending order, whatever the argument order)
    origin = {r.key: r.extra["pooled_from"] for r in records}
    assert origin[("arith-003", 9)] == {
        "run_id": json.loads((seeds["s2"] / "config.json").read_text())["run_id"],
        "seed": 2,
        "sample_index": 1,
    }
    results = json.loads((folder.path / "results.json").read_text())
    assert results["final"] is True and results["metrics"]["pass_at_1"] == pytest.approx(50.0)
    per_problem = {row["id"]: row for row in results["metrics"]["per_problem"]}
    assert (per_problem["arith-001"]["correct"], per_problem["arith-001"]["samples"]) == (9, 12)
    assert [p["seeds"] for p in results["provenance"]["pooled_from"]] == [[0], [1], [2]]

    # Pooling again adds nothing; the pooled folder is a run for compare, leaderboard and report alike.
    code, again, _ = cli(
        "pool", str(seeds["s0"]), str(seeds["s1"]), str(seeds["s2"]), "--out", str(out), "--workers", "1"
    )
    assert code == 0 and "0 samples added" in again and pooled_folder(again) == folder.path
    code, text, err = cli("compare", str(folder.path), str(seeds["s0"]), "--format", "json")
    doc = json.loads(text)
    assert (doc["delta"], doc["p_value"]) == (0.0, 1.0)
    assert doc["a"]["seed"] == [0, 1, 2] and any("n differs (12 vs 4" in w for w in doc["warnings"])
    code, board, _ = cli("leaderboard", str(out), str(seeds["s0"]), "--reference", "none")
    rows = [line for line in board.splitlines() if line.startswith("| replay:m.jsonl")]
    assert code == 0 and len(rows) == 2  # never merged with a single seed's row
    assert any("seed=[0, 1, 2]" in row and "50.0 [" in row and "n=12" in row for row in rows)


def test_evalkit_run_does_not_resume_into_a_pooled_folder(seeds, tmp_path: Path) -> None:
    code, said, _ = cli("pool", str(seeds["s0"]), str(seeds["s1"]), "--out", str(tmp_path), "--workers", "1")
    folder = pooled_folder(said)
    replay = seeds["root"] / "runs" / "m.jsonl"
    args = ["run", "--backend", "replay", "--from", str(replay), "--task", "arith-demo", "--n", "8"]
    code, _, err = cli(*args, "--run-dir", str(folder))
    assert code == 2 and "holds a run with a different config (seed: [0, 1] -> 0)" in err


def test_a_pooled_folder_is_scored_merged_and_reported_like_any_run(seeds, tmp_path: Path) -> None:
    code, said, err = cli(
        "pool", str(seeds["s0"]), str(seeds["s2"]), "--out", str(tmp_path), "--workers", "1"
    )
    assert code == 0, err
    folder = RunFolder(pooled_folder(said))
    before = folder.results()

    code, _, err = cli("score", str(folder.path), "--workers", "1")
    rescored = folder.results()
    assert code == 0 and rescored.final, err
    assert rescored.metrics["pass_at_1"] == before.metrics["pass_at_1"] == pytest.approx(50.0)
    assert rescored.provenance.extra["pooled_from"] == before.provenance.extra["pooled_from"]  # kept
    assert len(folder.scores()) == 30 * 8

    code, said, err = cli("merge", str(folder.path), "--out", str(tmp_path / "merged"), "--workers", "1")
    merged = RunFolder(tmp_path / "merged" / folder.path.name)
    assert code == 0 and "240 samples added" in said, err
    assert merged.config() == folder.config() and merged.config().seeds == (0, 2)
    assert merged.results().metrics["per_problem"] == before.metrics["per_problem"]

    code, said, err = cli("report", str(folder.path), "--out", str(tmp_path / "report"))
    page = (tmp_path / "report" / "report.html").read_text()
    assert code == 0 and "[0, 2]" in page, err


def _incomplete_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    lines = (target / "completions.jsonl").read_text().splitlines(keepends=True)
    (target / "completions.jsonl").write_text("".join(lines[:-2]))
    return target


@pytest.mark.parametrize(
    ("pick", "message"),
    [
        (lambda s, t: [s["s0"], s["hot"]], "in more than the seed (temperature: 0.6 -> 1.0)"),
        (
            lambda s, t: [s["s0"], s["other"]],
            "in more than the seed (model: 'replay:m.jsonl' -> 'replay:o.jsonl'",
        ),
        (lambda s, t: [s["s0"], shutil.copytree(s["s0"], t / "copy")], "seed 0 is in both"),
        (
            lambda s, t: [s["s0"], _incomplete_copy(s["s1"], t / "cut")],
            "is incomplete (2 of 120 samples missing)",
        ),
        (lambda s, t: [s["s0"]], "at least two run folders"),
        (lambda s, t: [s["s0"], t / "nothing"], "is not a run folder"),
    ],
)
def test_pool_refusals(seeds, tmp_path: Path, pick, message: str) -> None:
    out = tmp_path / "out"
    code, _, err = cli("pool", *map(str, pick(seeds, tmp_path)), "--out", str(out))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()  # a refusal writes nothing
