"""benchmarks/gpu_check.sh fits one device call and its dry run works here: its timeouts sum to at most
480 s, it runs every GPU-marked test file, --dry-run collects those tests and checks the benchmark's
imports as the device image has them (no datasets, no math-verify), --part selects parts, and the
summary reads whatever part files exist."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gpu_summary
from benchmarks.engine_bench.targets import targets

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
TEXT = SCRIPT.read_text()
ONE_CALL_S = 480  # the issue: one device call of at most 8 minutes
ONE_PART_RERUN_S = 180  # the issue: `--part N` in at most 3 minutes


def _declared() -> dict[str, int]:
    return {
        k: int(v)
        for k, v in re.findall(r"^(TIMEOUT_\w+|KILL_GRACE|LIMIT_TOTAL)=(\d+)\s*(?:#.*)?$", TEXT, re.M)
    }


def _script(*args: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out)}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


def test_timeouts_are_declared_once_and_sum_to_one_device_call():
    t = _declared()
    limits = {k: v for k, v in t.items() if k.startswith("TIMEOUT_")}
    assert set(limits) == {f"TIMEOUT_{n}" for n in ("SMI", "VERSIONS", "PART1", "PART2", "PART3", "SUMMARY")}
    # every limit is used once, each through `timeout -k KILL_GRACE` (the parts' through LIMIT), and no
    # command has a timeout of its own
    calls = re.findall(r"\btimeout -k \"\$KILL_GRACE\" \"\$(\w+)\"", TEXT)
    assert sorted(calls) == ["LIMIT", "TIMEOUT_SMI", "TIMEOUT_SUMMARY", "TIMEOUT_VERSIONS"]
    assert sorted(re.findall(r"LIMIT=\$(TIMEOUT_\w+)", TEXT)) == [
        "TIMEOUT_PART1",
        "TIMEOUT_PART2",
        "TIMEOUT_PART3",
    ]
    assert not re.search(r"\btimeout (-k \S+ )?\d", TEXT), "a timeout not taken from the declared limits"
    worst = sum(limits.values()) + len(limits) * t["KILL_GRACE"]
    assert worst <= ONE_CALL_S and t["LIMIT_TOTAL"] == ONE_CALL_S
    for n in (1, 2, 3):  # each part alone (with the header and the summary) fits a rerun
        alone = (
            limits[f"TIMEOUT_PART{n}"]
            + limits["TIMEOUT_SMI"]
            + limits["TIMEOUT_VERSIONS"]
            + limits["TIMEOUT_SUMMARY"]
        )
        assert limits[f"TIMEOUT_PART{n}"] <= 150 and alone + 4 * t["KILL_GRACE"] <= ONE_PART_RERUN_S


def test_the_script_runs_every_gpu_marked_test_file():
    listed = re.search(r"GPU_TEST_FILES=\((.*?)\)", TEXT, re.S).group(1).split()
    uses_marker = re.compile(
        r"^\s*(@pytest\.mark\.gpu\b|pytest\.mark\.gpu,|pytestmark = pytest\.mark\.gpu\b)", re.M
    )
    marked = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("test_*.py")
        if uses_marker.search(p.read_text())
    )
    assert sorted(listed) == marked and len(set(listed)) == len(listed)


@pytest.mark.slow
def test_dry_run_prints_every_command_and_collects_the_gpu_tests(tmp_path):
    proc = _script("--dry-run", out=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert out.rstrip().endswith("dry run OK")
    worst = sum(v for k, v in _declared().items() if k.startswith("TIMEOUT_")) + 6 * _declared()["KILL_GRACE"]
    assert f"= {worst} s (limit {ONE_CALL_S} s)" in out  # the script's own sum agrees with this test's
    for command in (
        "nvidia-smi",
        "benchmarks/gpu_tests.py --json",
        "--part grid",
        "--part baseline",
        "gpu_summary.py",
    ):
        assert re.search(rf"^would run: timeout .*{re.escape(command)}", out, re.M), command
    n_files = len(re.search(r"GPU_TEST_FILES=\((.*?)\)", TEXT, re.S).group(1).split())
    collected = re.search(r"collected (\d+) GPU tests: (.*)", out)
    assert collected and int(collected.group(1)) >= n_files and collected.group(2).count(",") == n_files - 1
    assert "--evalkit-from" in out.split("--part baseline")[1].splitlines()[0]  # part 3 divides by part 2
    assert (
        out.count("--dry-run (nothing measured)") == 2 and "MISSING" in out
    )  # the engine's plan; an empty summary
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


def test_dry_run_part_selects_that_part(tmp_path):
    proc = _script("--dry-run", "--part", "2", out=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    commands = [line for line in proc.stdout.splitlines() if line.startswith("would run:")]
    assert any("--part grid" in c for c in commands)
    assert not any("gpu_tests.py" in c or "--part baseline" in c for c in commands)
    assert "parts 2;" in proc.stdout


@pytest.mark.parametrize("args", [["--part", "4"], ["--part"], ["--parts", "2"]])
def test_bad_arguments_are_one_line_errors(tmp_path, args):
    proc = _script(*args, out=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stdout == ""


@pytest.mark.skipif(importlib.util.find_spec("datasets") is None, reason="needs datasets here to block it")
def test_device_image_blocks_what_the_image_lacks(tmp_path):
    """The negative control of the dry run: a GPU test importing datasets (installed here: see the skipif)
    fails to collect under benchmarks/device_image.py, as it would on the device."""
    test = tmp_path / "test_needs_datasets.py"
    test.write_text("import datasets\nimport pytest\n\n@pytest.mark.gpu\ndef test_x():\n    pass\n")
    collect = [str(ROOT / "benchmarks" / "gpu_tests.py"), "--collect-only", str(test)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    blocked = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "device_image.py"), *collect],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert (
        blocked.returncode == 1 and "ModuleNotFoundError" in blocked.stdout and "datasets" in blocked.stdout
    )
    probe = "import importlib.util as u, sys; assert u.find_spec('math_verify') is None; import math_verify"
    code = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "device_image.py"), "-c", probe],
        capture_output=True,
        text=True,
    )
    assert code.returncode == 1 and "ModuleNotFoundError" in code.stderr  # absent, not merely unimportable


def test_dry_run_also_imports_what_the_gpu_tests_import_inside_their_bodies(tmp_path, monkeypatch, capsys):
    from benchmarks import gpu_tests

    package = tmp_path / "exercised_pkg"
    (package / "kernels").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "kernels" / "__init__.py").write_text("")
    (package / "kernels" / "fast.py").write_text("import math_verify\n")  # a lazily imported module
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(gpu_tests, "EXERCISED_PACKAGES", ("exercised_pkg",))
    monkeypatch.setitem(sys.modules, "math_verify", None)  # as benchmarks/device_image.py does
    assert gpu_tests.import_exercised() == 1
    assert "exercised_pkg.kernels.fast: ModuleNotFoundError" in capsys.readouterr().out
    (package / "kernels" / "fast.py").write_text("import math\n")
    assert gpu_tests.import_exercised() == 0


# ---------------------------------------------------------------------------------------- the summary
def _grid_row(batch, context, ms, fraction, host):
    return {"batch": batch, "context": context, "ms_per_step": ms, "fraction_of_copy_bandwidth": fraction,
            "host_overhead_share": host}  # fmt: skip


def _part_files(folder: Path, stamp: str, parts: dict) -> None:
    for n, data in parts.items():
        (folder / f"gpu-{stamp}-part{n}.json").write_text(json.dumps(data))


PART1_PASS = {
    "complete": True,
    "summary": {"passed": 22, "collected": 22, "ok": True},
    "tests": [],
    "seconds": 80,
}
PART1_FAIL = {
    "complete": True,
    "summary": {"passed": 20, "collected": 22, "ok": False},
    "tests": [
        {"id": "t.py::test_graphs[bf16]", "outcome": "failed"},
        {"id": "t.py::test_x", "outcome": "passed"},
    ],
}
PART1_CUT = {"complete": False, "running": "t.py::test_full_size", "summary": {"passed": 9, "collected": 22}}
PREDICTED = {
    "paper": {"tokens_per_second": 9000.0, "seconds": 233},
    "eval": {"tokens_per_second": 8000.0, "seconds": 4000},
}


def _part2(fraction=0.55, host=0.04, complete=True):
    result = {"complete": complete, "stage": "done" if complete else "evalkit engine grid",
              "copy_bandwidth_gb_per_second": 4300.0,
              "evalkit": {"grid": [_grid_row(64, 8192, 4.0, fraction, host), _grid_row(1, 2048, 2.5, 0.7, 0.2)],
                          "checks": {"paper": {"predicted_over_measured": 1.03}}}}  # fmt: skip
    if complete:
        result["evalkit"]["predicted"] = PREDICTED
    result["targets"] = targets(result)
    return result


def _part3(theirs=600.0, compiled_over_eager=None):
    result = {"complete": True, "evalkit_from": {"path": "x/gpu-1-part2.json", "predicted": PREDICTED},
              "transformer": {"workloads": {n: {"batch": 16, "grid": [{}] * 3, "predicted": {"tokens_per_second": theirs}}
                                            for n in ("paper", "eval")}}}  # fmt: skip
    if compiled_over_eager is not None:
        result["transformer"]["compiled_check"] = {"compiled_over_eager": compiled_over_eager}
    result["targets"] = targets(result)
    return result


@pytest.mark.parametrize(
    "parts, expect",
    [
        (
            {1: PART1_PASS, 2: _part2(), 3: _part3()},
            [
                "part 1 tests     PASS 22/22",
                r"speedup, paper workload .* 15\.00x   met \(\+5\.00x\)",
                r"copy bandwidth at 64 x 8K .* 55\.0%   GAP \(-5\.0 pts\)",
                r"host overhead .* 4\.0%   met",
                "verdict: part 1 PASS; targets met 2/3 .*all parts complete",
            ],
        ),
        (
            {1: PART1_FAIL, 2: _part2(0.65)},
            [
                "part 1 tests     FAIL 20/22 passed, failed: test_graphs\\[bf16\\]",
                "part 3 baseline  MISSING",
                r"speedup, paper workload .* missing",
                r"copy bandwidth .* 65\.0%   met",
                "some parts missing",
            ],
        ),
        (
            {1: PART1_CUT, 2: _part2(complete=False)},
            [
                r"FAIL 9/22 passed; INCOMPLETE \(stopped in: t.py::test_full_size\)",
                r"part 2 grid      INCOMPLETE \(stopped in: evalkit engine grid\): 2 points",
                "64x8192: 4.00 ms 55% 4%",
            ],
        ),
        (
            {3: _part3(theirs=800.0, compiled_over_eager=0.8)},  # compiled generate faster: judged against it
            [
                r"speedup, paper workload .* 9\.00x   GAP \(-1\.00x\); eager 11\.25x, compiled ~9\.0x",
                "part 1 tests     MISSING",
                "compiled/eager step 0.8",
            ],
        ),
        ({}, ["part 1 tests     MISSING", "part 2 grid      MISSING", "targets met 0/3 \\(0 measured\\)"]),
    ],
    ids=["all-parts", "part1-fails-part3-missing", "cut-short", "compiled-baseline-faster", "nothing"],
)
def test_summary_reads_whatever_parts_exist(tmp_path, parts, expect):
    _part_files(tmp_path, "20261215-103000", parts)
    lines, ok = gpu_summary.summarize([tmp_path], "20261215-103000")
    text = "\n".join(lines)
    for pattern in expect:
        assert re.search(pattern, text), (pattern, text)
    assert ok == (set(parts) == {1, 2, 3} and parts[1] is PART1_PASS)
    assert len(lines) <= 30  # one screen


def test_summary_prefers_this_run_then_the_newest_and_says_which(tmp_path):
    older, newer = tmp_path / "results", tmp_path / "out"
    older.mkdir(), newer.mkdir()
    _part_files(older, "20261214-090000", {1: PART1_FAIL, 2: _part2(0.3)})
    _part_files(older, "20261214-100000", {1: PART1_PASS})
    _part_files(newer, "20261215-103000", {2: _part2(0.7)})
    lines, _ = gpu_summary.summarize([newer, older], "20261215-103000")
    text = "\n".join(lines)
    assert "[gpu-20261214-100000-part1.json]" in text and "PASS 22/22" in text  # the newest recorded part 1
    assert "[gpu-20261215-103000-part2.json]" in text and "70.0%" in text  # this run's part 2 first
    (newer / "gpu-20261215-103000-part3.json").write_text("{not json")
    assert "part 3 baseline  MISSING (unreadable file" in "\n".join(
        gpu_summary.summarize([newer, older], None)[0]
    )


TINY_ENGINE = (
    "--device cpu --config tiny --slots 4 --paper 16,4,48 --eval 3,4,8,16,48 --points 4x32,1x16"
    " --grid-steps 2 --check-scale 4 --check-problems 1 --baseline-steps 2 --baseline-contexts 2 --threads 1"
)


@pytest.mark.slow
def test_real_path_rehearsed_on_cpu_writes_files_the_device_tool_brings_back(tmp_path):
    """Parts 2 and 3 for real with a tiny engine on CPU: each part's JSON and log, part 3 reading part
    2's JSON, the summary printed and written, names and count within the device tool's limits."""
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path), "GPU_CHECK_ENGINE_ARGS": TINY_ENGINE}
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--part", "2,3"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    files = sorted(f.name for f in tmp_path.iterdir())
    stamp = re.match(r"gpu-(\d{8}-\d{6})-", files[0]).group(1)
    assert files == [
        f"gpu-{stamp}-{n}" for n in ("part2.json", "part2.log", "part3.json", "part3.log", "summary.txt")
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", f) for f in files) and len(files) <= 8
    part3 = json.loads((tmp_path / f"gpu-{stamp}-part3.json").read_text())
    assert part3["complete"] and part3["evalkit_from"]["path"].endswith(f"gpu-{stamp}-part2.json")
    summary = (tmp_path / f"gpu-{stamp}-summary.txt").read_text()
    assert (
        summary in proc.stdout
        and "part 2 grid      complete" in summary
        and "part 3 baseline  complete" in summary
    )
    assert re.search(r"speedup, paper workload .* \d+\.\d\dx", summary)
    assert proc.stdout.rstrip().endswith(f"exit codes: part2=0 part3=0; files in {tmp_path}: gpu-{stamp}-*")


def test_part1_keeps_what_a_gpu_test_measures(tmp_path):
    """A GPU test's timings are measurements recorded with record_property, stored in part 1's JSON (no
    test asserts a time); run here on a marked test that needs no GPU."""
    test = tmp_path / "test_measures.py"
    test.write_text(
        "import pytest\n\n@pytest.mark.gpu\ndef test_m(record_property):\n"
        "    record_property('top_p_kernel_ms', 0.5)\n    record_property('top_p_reference_ms', 2.0)\n"
        "    record_property('top_p_budget_ms', 1.0)\n"
    )
    out = tmp_path / "gpu-20261215-103000-part1.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_tests.py"), "--json", str(out), str(test)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:]
    (entry,) = json.loads(out.read_text())["tests"]
    assert entry["measured"] == {"top_p_kernel_ms": 0.5, "top_p_reference_ms": 2.0, "top_p_budget_ms": 1.0}
    lines, _ = gpu_summary.summarize([tmp_path], "20261215-103000")
    assert any(
        re.search(
            r"test_m: top-p kernel 0\.5 ms/call \(within its 1\.0 ms budget\), reference 2\.0 ms \(4\.0x\)",
            line,
        )
        for line in lines
    ), lines
