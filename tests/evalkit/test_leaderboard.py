"""evalkit leaderboard: cells, CIs, published rows, deltas, markers, formats that agree, bad input."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.core.errors import EvalkitError
from evalkit.report import (
    ReportInputError,
    build_leaderboard,
    load_reference,
    load_runs,
    parse_reference,
    render_leaderboard,
)
from tests.evalkit.test_report_fixtures import write_run

FLASH = "microsoft/Phi-4-mini-flash-reasoning"
FLASH_PUBLISHED = "Phi4-mini-Flash-Reasoning (3.8B)"
TEN = 10


def _rows(samples_right: list[int], n: int = 4) -> list[list[bool]]:
    return [[j < right for j in range(n)] for right in samples_right]


@pytest.fixture(scope="module")
def results_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    # 50% with the published 52.29 inside [40, 60]: delta -2.3, no marker.
    write_run(root, task="aime24", correct=_rows([2] * TEN), ci=(40.0, 60.0))
    # 90% with the published 33.59 far outside [85, 95]: delta +56.4 and the marker.
    write_run(root, task="aime25", correct=_rows([4] * 6 + [3] * 4), ci=(85.0, 95.0))
    # One sample missing: incomplete, never a result, no delta, not in the mean.
    write_run(root, task="gpqa_diamond", correct=[[True] * 4] * 9 + [[True] * 3])
    # The same model and task at two temperatures: two rows, never merged.
    write_run(root, model="my-org/tiny", task="aime24", correct=_rows([1] * TEN), ci=(10.0, 40.0))
    write_run(
        root,
        model="my-org/tiny",
        task="aime24",
        temperature=1.0,
        correct=_rows([0] * 9 + [4]),
        ci=(0.0, 25.0),
    )
    # Generated but never scored (no results.json).
    write_run(root, model="my-org/unscored", task="aime24", correct=_rows([1] * 3), scored=False)
    return root


@pytest.fixture(scope="module")
def board(results_root: Path):
    return build_leaderboard(load_runs([results_root]), load_reference("phi4_mini_flash_model_card"))


def parse_markdown(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    split = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    return split[0], split[2:]


def _by_label(header: list[str], body: list[list[str]]) -> dict[str, dict[str, str]]:
    return {f"{row[0]} | {row[2]}": dict(zip(header, row, strict=True)) for row in body}


def _ours(table: dict[str, dict[str, str]], model: str, tag_part: str = "") -> dict[str, str]:
    matches = [
        row
        for label, row in table.items()
        if row["Model"] == model and row["Source"] == "ours" and tag_part in label
    ]
    assert len(matches) == 1, (model, tag_part, list(table))
    return matches[0]


def test_markdown_cells_ci_deltas_and_marker(board) -> None:
    header, body = parse_markdown(render_leaderboard(board, "md"))
    assert header == [
        "Model",
        "Source",
        "Config",
        "aime24",
        "Δ aime24",
        "aime25",
        "Δ aime25",
        "gpqa_diamond",
        "Δ gpqa_diamond",
        "Mean",
    ]
    table = _by_label(header, body)
    flash = _ours(table, FLASH)
    assert flash["aime24"] == "50.0 [40.0, 60.0] n=4"
    assert flash["Δ aime24"] == "-2.3"  # 50.0 - 52.29, published inside the CI: no marker
    assert flash["aime25"] == "90.0 [85.0, 95.0] n=4"
    assert flash["Δ aime25"] == "+56.4 †"  # 90.0 - 33.59, published outside [85, 95]
    assert flash["gpqa_diamond"].endswith("n=4 *incomplete*")
    assert flash["Δ gpqa_diamond"] == ""  # an incomplete cell is not compared
    assert flash["Mean"] == "70.00"  # (50 + 90) / 2: the incomplete task is left out


@pytest.mark.parametrize(
    ("model", "aime24", "aime25", "gpqa", "mean"),
    [
        ("Phi4-mini-Flash-Reasoning (3.8B)", "52.29 n=64", "33.59 n=64", "45.08 n=8", "43.65"),
        ("DeepSeek-R1-Distill-Qwen-7B", "53.70 n=64", "35.94 n=64", "47.85 n=8", "45.83"),
        ("Bespoke-Stratos-7B", "21.51 n=64", "18.28 n=64", "38.51 n=8", "26.10"),
    ],
)
def test_published_rows(board, model: str, aime24: str, aime25: str, gpqa: str, mean: str) -> None:
    header, body = parse_markdown(render_leaderboard(board, "md"))
    row = next(dict(zip(header, r, strict=True)) for r in body if r[0] == model)
    assert row["Source"] == "published"
    assert (row["aime24"], row["aime25"], row["gpqa_diamond"], row["Mean"]) == (aime24, aime25, gpqa, mean)
    assert row["Δ aime24"] == ""


def test_rows_sorted_by_mean_and_configs_not_merged(board) -> None:
    header, body = parse_markdown(render_leaderboard(board, "md"))
    means = [float(r[-1]) for r in body if r[-1]]
    assert means == sorted(means, reverse=True)
    assert body[0][0] == FLASH  # 70.00 beats every published row here
    table = _by_label(header, body)
    cold = _ours(table, "my-org/tiny", "temperature=0.6")
    hot = _ours(table, "my-org/tiny", "temperature=1.0")
    assert cold["aime24"] == "25.0 [10.0, 40.0] n=4"
    assert hot["aime24"] == "10.0 [0.0, 25.0] n=4"
    assert "Δ aime24" in cold and cold["Δ aime24"] == ""  # no published row for this model
    unscored = _ours(table, "my-org/unscored")
    assert unscored["aime24"] == "*incomplete: not scored*"
    assert body[-1][0] == "my-org/unscored"  # no final number: sorted last, never hidden


_NUMBER = re.compile(r"[-+]?\d+\.\d+")


def _numbers(cells: list[str]) -> list[float]:
    # Skip Model / Source / Config: names like "Qwen-1.5B" hold digits that are not results.
    return [float(x) for cell in cells[3:] for x in _NUMBER.findall(cell)]


def _html_rows(text: str) -> list[list[str]]:
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", text, flags=re.S)
    cells = [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, flags=re.S)
        ]
        for r in rows
    ]
    return cells[1:]


def _latex_rows(text: str) -> list[list[str]]:
    body = text.split("\\midrule", 1)[1].split("\\bottomrule", 1)[0]
    return [[c.strip() for c in line.rstrip("\\ ").split(" & ")] for line in body.strip().splitlines()]


def _csv_numbers(record: dict[str, str], tasks: list[str], delta_tasks: list[str]) -> list[float]:
    """The numbers a rendered row must show, rebuilt from the CSV at display precision."""
    out: list[float] = []
    for task in tasks:
        if record[f"{task}_status"] == "published":
            out.append(round(float(record[task]), 2))
        elif record[f"{task}_status"] in ("final", "incomplete"):
            out += [round(float(record[k]), 1) for k in (task, f"{task}_ci_low", f"{task}_ci_high")]
        if task in delta_tasks and record.get(f"{task}_delta"):
            out.append(round(float(record[f"{task}_delta"]), 1))
    if record["mean"]:
        out.append(round(float(record["mean"]), 2))
    return out


def test_csv_html_latex_agree_with_markdown(board) -> None:
    _, md_body = parse_markdown(render_leaderboard(board, "md"))
    html_body = _html_rows(render_leaderboard(board, "html"))
    latex_text = render_leaderboard(board, "latex")
    latex_body = _latex_rows(latex_text)
    records = list(csv.DictReader(io.StringIO(render_leaderboard(board, "csv"))))
    assert len(md_body) == len(html_body) == len(latex_body) == len(records) == len(board.rows)
    for md_row, html_row, latex_row, record in zip(md_body, html_body, latex_body, records, strict=True):
        expected = _numbers(md_row)
        assert _numbers(html_row) == expected
        assert _numbers(latex_row) == expected
        assert _csv_numbers(record, list(board.tasks), list(board.delta_tasks)) == expected
        assert record["model"] == md_row[0] == html_row[0]
    # Marks come through in each format's own syntax.
    assert "+56.4 †" in render_leaderboard(board, "html")
    assert "+56.4$^\\dagger$" in latex_text and "gpqa\\_diamond" in latex_text
    assert "\\emph{incomplete}" in latex_text
    flash = next(r for r in records if r["model"] == FLASH)
    assert (flash["aime25_published_outside_ci"], flash["aime24_published_outside_ci"]) == ("True", "False")
    assert flash["gpqa_diamond_published_outside_ci"] == ""  # incomplete: not compared
    assert flash["gpqa_diamond_status"] == "incomplete"


@pytest.mark.parametrize(
    ("our_model", "expected"),
    [
        (FLASH, FLASH_PUBLISHED),
        ("/models/Phi-4-mini-flash-reasoning/", FLASH_PUBLISHED),  # a local checkout of the same model
        ("DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distill-Qwen-7B"),  # the reference name itself
        ("microsoft/Phi-4-mini-reasoning", "Phi4-mini-Reasoning (3.8B)"),
        ("my-org/tiny", None),
    ],
)
def test_reference_model_matching(our_model: str, expected: str | None) -> None:
    found = load_reference("phi4_mini_flash_model_card").match(our_model)
    assert (found.name if found else None) == expected


def test_reference_file_holds_the_published_table() -> None:
    reference = load_reference("phi4_mini_flash_model_card")
    assert len(reference.models) == 7
    flash = reference.model_named(FLASH_PUBLISHED)
    assert flash.pass_at_1 == {"aime24": 52.29, "aime25": 33.59, "math500": 92.45, "gpqa_diamond": 45.08}
    assert flash.n == {"aime24": 64, "aime25": 64, "math500": 8, "gpqa_diamond": 8}
    assert reference.sampling["temperature"] == 0.6 and reference.sampling["top_p"] == 0.95


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"format": "other", "schema_version": 1, "models": []}, "evalkit-reference"),
        ({"format": "evalkit-reference", "schema_version": 1, "models": []}, "empty"),
        ({"format": "evalkit-reference", "schema_version": 1, "models": [{"name": "x"}]}, "pass_at_1"),
    ],
)
def test_bad_reference_documents(doc: dict, message: str) -> None:
    with pytest.raises(EvalkitError, match=message):
        parse_reference(doc)


def test_unknown_reference_name_lists_the_known_ones() -> None:
    with pytest.raises(EvalkitError, match="phi4_mini_flash_model_card"):
        load_reference("no_such_reference")


def test_user_reference_file_by_path(tmp_path: Path, results_root: Path) -> None:
    doc = {
        "format": "evalkit-reference",
        "schema_version": 1,
        "title": "my lab",
        "tasks": {"aime24": {"n": 16}},
        "models": [{"name": "Tiny (ours, last week)", "pass_at_1": {"aime24": 30.0}}],
        "aliases": {"my-org/tiny": "Tiny (ours, last week)"},
    }
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(doc))
    header, body = parse_markdown(
        render_leaderboard(build_leaderboard(load_runs([results_root]), load_reference(str(path))), "md")
    )
    table = _by_label(header, body)
    assert _ours(table, "my-org/tiny", "temperature=0.6")["Δ aime24"] == "-5.0"  # 25 - 30, inside [10, 40]
    assert _ours(table, "my-org/tiny", "temperature=1.0")["Δ aime24"] == "-20.0 †"  # 10 - 30, outside [0, 25]
    assert any(row[0] == "Tiny (ours, last week)" and row[3] == "30.00 n=16" for row in body)


def test_mixed_schema_versions_name_folders_and_versions(tmp_path: Path) -> None:
    old = write_run(tmp_path, correct=_rows([1, 2]))
    new = write_run(tmp_path, task="aime25", schema_version=2, correct=_rows([1, 2]))
    with pytest.raises(ReportInputError) as info:
        load_runs([tmp_path])
    message = str(info.value)
    assert "v1" in message and "v2" in message and old.name in message and new.name in message
    assert "\n" not in message


@pytest.mark.parametrize("make", ["empty", "unrelated files", "missing"])
def test_not_a_run_folder_is_a_one_line_error(tmp_path: Path, make: str) -> None:
    target = tmp_path / "thing"
    if make != "missing":
        target.mkdir()
    if make == "unrelated files":
        (target / "notes.txt").write_text("hello")
        (target / "sub").mkdir()
    with pytest.raises(ReportInputError) as info:
        load_runs([target])
    assert str(target) in str(info.value) and "\n" not in str(info.value)


def test_cli_leaderboard_writes_file_and_fails_in_one_line(tmp_path: Path, results_root: Path) -> None:
    out = tmp_path / "board.md"
    done = subprocess.run(
        [sys.executable, "-m", "evalkit", "leaderboard", str(results_root), "--format", "md", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "50.0 [40.0, 60.0] n=4" in out.read_text()
    (tmp_path / "empty").mkdir()
    bad = subprocess.run(
        [sys.executable, "-m", "evalkit", "leaderboard", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "not a run folder" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_same_settings_but_another_prompt_is_another_row(tmp_path: Path) -> None:
    write_run(tmp_path, task="aime24", prompt_name="official", correct=_rows([2, 2]), ci=(30.0, 70.0))
    write_run(tmp_path, task="aime24", prompt_name="lighteval", correct=_rows([4, 4]), ci=(90.0, 100.0))
    write_run(tmp_path, task="aime25", prompt_name="official", correct=_rows([1, 1]), ci=(10.0, 40.0))
    header, body = parse_markdown(render_leaderboard(build_leaderboard(load_runs([tmp_path]), None), "md"))
    ours = [dict(zip(header, row, strict=True)) for row in body]
    assert [row["aime24"] for row in ours] == ["100.0 [90.0, 100.0] n=4", "50.0 [30.0, 70.0] n=4"]
    # The aime25 run joins the row with the same prompt; the other prompt's aime24 run gets its own row.
    assert [row["aime25"] for row in ours] == ["", "25.0 [10.0, 40.0] n=4"]
    assert "prompt_name=lighteval" in ours[0]["Config"] and "prompt_name=official" in ours[1]["Config"]
    assert all(row["Model"] == FLASH and "Δ aime24" not in row for row in ours)


def test_shell_glob_over_results_skips_what_is_not_a_run(tmp_path: Path) -> None:
    """`evalkit leaderboard results/*` also matches results/reference/ and results/README.md."""
    first = write_run(tmp_path, correct=_rows([1, 2]))
    second = write_run(tmp_path, task="aime25", correct=_rows([3, 4]))
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "x.json").write_text("{}")
    (tmp_path / "README.md").write_text("results")
    skipped: list[Path] = []
    runs = load_runs(sorted(tmp_path.iterdir()), skipped)
    assert sorted(r.path.name for r in runs) == sorted([first.name, second.name])
    assert sorted(p.name for p in skipped) == ["README.md", "reference"]
    # A run's own config.json stands for its folder; only non-runs and nothing else is an error.
    assert [r.run_id for r in load_runs([first / "config.json"])] == [first.name]
    with pytest.raises(ReportInputError, match="reference is not a run folder"):
        load_runs([tmp_path / "reference", tmp_path / "README.md"])
