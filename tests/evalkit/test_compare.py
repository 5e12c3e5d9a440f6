"""`evalkit compare RUN_A RUN_B` on run folders built by `evalkit run --backend replay` (arith-demo):
refusals, warnings, formats, the deciding problems, seeds."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest

from evalkit.core.types import stable_hash
from evalkit.scoring import CHECKER_VERSION
from tests.evalkit.compare_helpers import cli, replay_run
from tests.evalkit.test_compare_stats import brute_force_p

# Problem i's correct samples of 4. A - B: +2 on five problems, +1 on three, -1 on two, 0 on twenty.
A_RIGHT = [4] * 5 + [3] * 3 + [1] * 2 + [2] * 20
B_RIGHT = [2] * 5 + [2] * 3 + [2] * 2 + [2] * 20
DIFFS = [0.5] * 5 + [0.25] * 3 + [-0.25] * 2 + [0.0] * 20


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    return {
        "a": replay_run(root, A_RIGHT, name="a"),
        "b": replay_run(root, B_RIGHT, name="b"),
        "b_hot": replay_run(root, B_RIGHT, name="b", extra=("--temperature", "1.0")),
        "b_prompt": replay_run(root, B_RIGHT, name="b", extra=("--prompt", "lighteval")),
        "b_n8": replay_run(root, [2 * r for r in B_RIGHT], n=8, name="b8"),
        "b_first20": replay_run(root, B_RIGHT[:20], name="b20"),
    }


def compare_json(a: Path, b: Path, *args: str) -> tuple[dict, str]:
    code, out, err = cli("compare", str(a), str(b), "--format", "json", *args)
    assert code == 0, err
    return json.loads(out), err


def test_known_delta_stderr_p_and_problems(runs) -> None:
    doc, err = compare_json(runs["a"], runs["b"])
    assert doc["task"] == "arith-demo" and doc["num_problems"] == 30
    assert doc["delta"] == pytest.approx(100 * sum(DIFFS) / 30)  # (2.5 + 0.75 - 0.5) / 30 = 9.17 points
    assert doc["a"]["pass_at_1"] == pytest.approx(100 * sum(A_RIGHT) / 120)
    assert doc["b"]["pass_at_1"] == pytest.approx(50.0)
    assert doc["p_value"] == pytest.approx(brute_force_p([d for d in DIFFS if d]))  # 10 nonzero: exact
    assert doc["method"]["p_method"] == "exact" and doc["method"]["problems_that_differ"] == 10
    assert doc["p_value"] == pytest.approx(42 / 1024)  # |sum| >= 2.5 in 42 of the 2**10 sign flips
    lo, hi = doc["ci95"]
    assert lo < doc["delta"] < hi
    assert doc["significant"] is True
    # With 4 samples a problem the two-level interval is the wider one here; the verdict says so.
    assert lo < 0 and "still includes 0" in doc["verdict"]
    assert doc["warnings"] == [] and "warning" not in err
    rows = {row["id"]: row for row in doc["problems"]}
    assert [row["id"] for row in doc["problems"]] == [f"arith-{i:03d}" for i in range(30)]
    assert rows["arith-000"] == {
        "id": "arith-000", "a": 100.0, "b": 50.0, "delta": 50.0,
        "a_correct": 4, "a_samples": 4, "b_correct": 2, "b_samples": 4,
    }  # fmt: skip
    assert rows["arith-008"]["delta"] == -25.0
    assert set(doc["pass_at_k"]) == {"2", "4"}
    assert set(doc["pass_at_k"]["2"]) == {
        "a",
        "b",
        "delta",
        "stderr",
        "ci95",
        "p_value",
        "p_method",
        "permutations",
    }


def test_deciding_problems_both_ways(runs) -> None:
    doc, _ = compare_json(runs["a"], runs["b"], "--top", "3")
    assert doc["deciding"] == {
        "a_ahead": ["arith-000", "arith-001", "arith-002"],  # +50 each, task order among ties
        "b_ahead": ["arith-008", "arith-009"],  # the only two where B is ahead
    }
    _, text, _ = cli("compare", str(runs["a"]), str(runs["b"]), "--top", "3")
    deciding = text.split("Problems that decide it:")[1].split("Per problem:")[0]
    assert deciding.count("arith-0") == 5 and "arith-005" not in deciding


def test_identical_runs_give_zero_and_p_one(runs, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(runs["a"], copy)
    doc, err = compare_json(runs["a"], copy)
    assert (doc["delta"], doc["stderr"], doc["p_value"], doc["significant"]) == (0.0, 0.0, 1.0, False)
    assert doc["ci95"][0] <= 0 <= doc["ci95"][1]
    assert doc["deciding"] == {"a_ahead": [], "b_ahead": []}
    assert "No significant difference" in doc["verdict"]
    same, _ = compare_json(runs["a"], runs["a"])
    assert same["warnings"] == [f"both arguments are the same run ({runs['a']})"]


def test_same_seed_same_numbers_other_seed_close(runs) -> None:
    first, _ = compare_json(runs["a"], runs["b"], "--seed", "5")
    again, _ = compare_json(runs["a"], runs["b"], "--seed", "5")
    other, _ = compare_json(runs["a"], runs["b"], "--seed", "6")
    assert first == again
    assert (other["delta"], other["p_value"]) == (first["delta"], first["p_value"])  # exact p: no seed
    assert other["seed"] == 6 and other["ci95"] != first["ci95"]
    assert other["ci95"] == pytest.approx(first["ci95"], abs=1.0)


@pytest.mark.parametrize(
    ("b", "warning"),
    [
        ("b_hot", "sampling settings differ (temperature 0.6 vs 1.0)"),
        ("b_prompt", "prompts differ (prompt_name 'official' vs 'lighteval'"),
        ("b_n8", "n differs (4 vs 8 samples per problem)"),
    ],
)
def test_differing_settings_are_warned_and_stated(runs, b: str, warning: str) -> None:
    doc, err = compare_json(runs["a"], runs[b])
    assert len(doc["warnings"]) == 1 and doc["warnings"][0].startswith(warning)
    assert f"warning: {warning}" in err
    assert doc["delta"] == pytest.approx(100 * sum(DIFFS) / 30)  # same verdict pattern, still compared
    for fmt in ("table", "md"):
        code, out, _ = cli("compare", str(runs["a"]), str(runs[b]), "--format", fmt)
        assert code == 0 and warning in out


def test_n_differs_limits_pass_at_k(runs) -> None:
    doc, _ = compare_json(runs["a"], runs["b_n8"])
    assert set(doc["pass_at_k"]) == {"2", "4"} and doc["b"]["n"] == 8


def test_checker_difference_is_warned(runs, tmp_path: Path) -> None:
    rescored = tmp_path / "lighteval"
    shutil.copytree(runs["b"], rescored)
    code, _, err = cli("score", str(rescored), "--mode", "lighteval", "--workers", "1")
    assert code == 0, err
    doc, err = compare_json(runs["a"], rescored)
    v = CHECKER_VERSION
    assert any(
        w.startswith(f"checker versions differ ({v} (evalkit) vs {v} (lighteval))") for w in doc["warnings"]
    )
    assert doc["b"]["checker"] == f"{v} (lighteval)"


def _edited_copy(source: Path, target: Path, **config_changes) -> Path:
    shutil.copytree(source, target)
    header = json.loads((target / "config.json").read_text())
    header["config"].update(config_changes)
    header["run_id"] = stable_hash(header["config"])  # a run of that config, not a hand-edited folder
    (target / "config.json").write_text(json.dumps(header))
    return target


def _drop_score_line(folder: Path) -> None:
    lines = (folder / "scores.jsonl").read_text().splitlines(keepends=True)
    (folder / "scores.jsonl").write_text("".join(lines[:-1]))


def _other_gold(folder: Path) -> None:
    lines = [json.loads(line) for line in (folder / "scores.jsonl").read_text().splitlines()]
    for record in lines:
        if record["problem_id"] == "arith-004":
            record["gold"] = "12345"
    (folder / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


@pytest.mark.parametrize(
    ("make_b", "message"),
    [
        (lambda runs, t: _edited_copy(runs["b"], t, task="aime24"), "different tasks"),
        (lambda runs, t: runs["b_first20"], "different problems of arith-demo: 10 only in"),
        (lambda runs, t: _edited_copy(runs["b"], t, data_fingerprint="0" * 64), "different arith-demo data"),
        (lambda runs, t: _other_gold(_edited_copy(runs["b"], t)) or t, "another gold, e.g. arith-004"),
        (lambda runs, t: _drop_score_line(_edited_copy(runs["b"], t)) or t, "incomplete (1 of 120 samples"),
        (lambda runs, t: (_edited_copy(runs["b"], t) / "scores.jsonl").unlink() or t, "no scores.jsonl"),
        (lambda runs, t: t.mkdir() or t, "not a run folder"),
    ],
    ids=["task", "problems", "data", "gold", "incomplete", "unscored", "not-a-run"],
)
def test_refusals_are_one_line_exit_2(runs, tmp_path: Path, make_b, message: str) -> None:
    b = make_b(runs, tmp_path / "b")
    out = tmp_path / "out.json"
    code, stdout, err = cli("compare", str(runs["a"]), str(b), "--format", "json", "--out", str(out))
    assert code == 2
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert stdout == "" and not out.exists()


def test_allow_incomplete_compares_what_is_there_and_says_so(runs, tmp_path: Path) -> None:
    b = _edited_copy(runs["b"], tmp_path / "b")
    _drop_score_line(b)  # the last problem loses one of its 4 samples
    doc, err = compare_json(runs["a"], b, "--allow-incomplete")
    assert any("incomplete (1 samples missing)" in w for w in doc["warnings"]) and "incomplete" in err
    last = doc["problems"][-1]
    assert (last["b_correct"], last["b_samples"]) == (2, 3)
    assert set(doc["pass_at_k"]) == {"2"}  # pass@4 needs 4 samples of every problem


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "pdf"), "unknown --format 'pdf'"),
        (("--n-bootstrap", "0"), "--n-bootstrap must be at least 1"),
        (("--top", "-1"), "--top must be 0 or more"),
    ],
)
def test_bad_options(runs, args: tuple[str, ...], message: str) -> None:
    code, _, err = cli("compare", str(runs["a"]), str(runs["b"]), *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_formats_show_the_same_numbers_and_html_writes_plots(runs, tmp_path: Path) -> None:
    doc, _ = compare_json(runs["a"], runs["b"])
    delta, (lo, hi) = doc["delta"], doc["ci95"]
    expected = [f"{delta:+.2f}", f"[{lo:+.2f}, {hi:+.2f}]", doc["verdict"]]
    page_path, md_path = tmp_path / "out" / "cmp.html", tmp_path / "out" / "cmp.md"
    code, said, _ = cli(
        "compare", str(runs["a"]), str(runs["b"]), "--format", "html", "--out", str(page_path)
    )
    assert code == 0 and "2 plots" in said
    code, _, _ = cli("compare", str(runs["a"]), str(runs["b"]), "--format", "md", "--out", str(md_path))
    _, table, _ = cli("compare", str(runs["a"]), str(runs["b"]))
    page, markdown = page_path.read_text(), md_path.read_text()
    for text, escape in ((page, html.escape), (markdown, str), (table, str)):
        for piece in expected:
            assert escape(piece) in text, piece
    plots = sorted(p.name for p in (tmp_path / "out" / "plots").iterdir())
    assert plots == [
        f"{stem}-{kind}.{ext}"
        for stem in ("cmp",)
        for kind in ("differences", "scatter")
        for ext in ("png", "svg")
    ]
    assert page.count("data:image/png;base64,") == 2 and "<script" not in page
    assert "(plots/cmp-scatter.png)" in markdown
    # html to the terminal embeds the plots and leaves no files behind
    code, printed, _ = cli("compare", str(runs["a"]), str(runs["b"]), "--format", "html")
    assert printed.count("data:image/png;base64,") == 2
