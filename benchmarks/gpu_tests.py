"""Part 1 of benchmarks/gpu_check.sh: the GPU-marked tests, with their outcomes written as JSON.

    python benchmarks/gpu_tests.py --json OUT.json [--per-test-timeout S] TEST_FILE...
    python benchmarks/gpu_tests.py --collect-only TEST_FILE...     # CPU: collect them, run nothing

The JSON is rewritten after every test, so a run cut off by its timeout still says which tests passed
and which one it was in. Part 1 passes when every collected test ran and passed: a skipped GPU test (no
CUDA visible) is not a pass. --collect-only fails when a file does not import or has no GPU test, or
when a module of the packages those tests exercise does not import (the tests import some of them only
inside the test functions, which a collection does not reach).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXERCISED_PACKAGES = ("model_backends.sambay",)
OUTPUT_CHARS = 2000  # of each test's captured output and failure text kept in the JSON


class Recorder:
    """A pytest plugin: one entry per test (the worst outcome of its setup, call and teardown)."""

    def __init__(self, json_path: Path | None, files: list[str]) -> None:
        self.json_path, self.files = json_path, files
        self.collected: list[str] = []
        self.collected_paths: list[Path] = []
        self.collection_errors: list[dict] = []
        self.tests: dict[str, dict] = {}
        self.start = time.monotonic()
        self.result = {
            "part": 1,
            "what": "GPU-marked tests: kernels vs references at real sizes, CUDA graphs + kernels vs the reference-op engine",
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python", *sys.argv]),
            "files": files,
            "complete": False,
        }

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.collection_errors.append(
                {"where": report.nodeid, "error": str(report.longrepr)[-OUTPUT_CHARS:]}
            )

    def pytest_collection_finish(self, session) -> None:
        self.collected = [item.nodeid for item in session.items]
        self.collected_paths = [Path(str(item.path)).resolve() for item in session.items]
        self._write()

    def pytest_runtest_logstart(self, nodeid, location) -> None:
        self.result["running"] = nodeid
        self._write()

    def pytest_runtest_logreport(self, report) -> None:
        entry = self.tests.setdefault(
            report.nodeid, {"id": report.nodeid, "outcome": "passed", "seconds": 0.0}
        )
        entry["seconds"] = round(entry["seconds"] + report.duration, 2)
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["failure"] = str(report.longrepr)[-OUTPUT_CHARS:]
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
            entry["reason"] = (
                str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
            )
        if report.user_properties:  # a test's measurements (pytest's record_property): kept, not judged
            entry.setdefault("measured", {}).update(dict(report.user_properties))
        if report.capstdout:
            entry["output"] = (entry.get("output", "") + report.capstdout)[-OUTPUT_CHARS:]
        if report.when == "teardown":
            self.result.pop("running", None)
            self._write()

    def summary(self) -> dict:
        outcomes = [t["outcome"] for t in self.tests.values()]
        counts = {k: outcomes.count(k) for k in ("passed", "failed", "error", "skipped")}
        counts["collected"] = len(self.collected)
        counts["not_run"] = len(self.collected) - len(self.tests)
        counts["collection_errors"] = len(self.collection_errors)
        counts["ok"] = (
            bool(self.collected) and counts["passed"] == counts["collected"] and not self.collection_errors
        )
        return counts

    def finish(self, exit_code: int) -> None:
        self.result.update(complete=True, exit_code=int(exit_code))
        self._write()

    def _write(self) -> None:
        if self.json_path is None:
            return
        self.result.update(
            seconds=round(time.monotonic() - self.start, 1),
            summary=self.summary(),
            tests=list(self.tests.values()),
            collection_errors=self.collection_errors,
            collected=self.collected,
        )
        tmp = self.json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.result, indent=1) + "\n")
        tmp.replace(self.json_path)


def _machine() -> dict:
    import torch

    from benchmarks.engine_bench.report import machine

    return machine("cuda" if torch.cuda.is_available() else "cpu")


def collect(files: list[str]) -> int:
    recorder = Recorder(None, files)
    code = pytest.main(
        ["--collect-only", "-q", "-m", "gpu", "-p", "no:cacheprovider", *files], plugins=[recorder]
    )
    per_file = {f: recorder.collected_paths.count((ROOT / f).resolve()) for f in files}
    empty = [f for f, n in per_file.items() if n == 0]
    print(
        f"collected {len(recorder.collected)} GPU tests: "
        + ", ".join(f"{Path(f).name} {n}" for f, n in per_file.items())
    )
    if code != 0 or recorder.collection_errors or empty:
        print(
            f"error: GPU test collection failed (pytest exit {int(code)}; files without GPU tests: {empty or 'none'})"
        )
        return 1
    return import_exercised()


def import_exercised() -> int:
    """Import every module of EXERCISED_PACKAGES; 1 (and the errors printed) when one fails."""
    failures, count = [], 0
    for package in EXERCISED_PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            count += 1
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # noqa: BLE001 - report every module that fails, not only the first
                failures.append(f"{info.name}: {type(exc).__name__}: {exc}")
    print(f"imported {count} modules of {', '.join(EXERCISED_PACKAGES)}" + (": FAILED" if failures else ""))
    for failure in failures:
        print(f"error: {failure}")
    return 1 if failures else 0


def run(files: list[str], json_path: Path, per_test_timeout: int) -> int:
    recorder = Recorder(json_path, files)
    try:
        recorder.result["machine"] = _machine()
    except Exception as exc:  # noqa: BLE001 - the tests still run; the JSON says why the machine is unknown
        recorder.result["machine"] = {"error": repr(exc)}
    args = ["-q", "-rA", "-m", "gpu", "-p", "no:cacheprovider", "-o", f"timeout={per_test_timeout}", *files]
    code = pytest.main(args, plugins=[recorder])
    recorder.finish(code)
    s = recorder.summary()
    verdict = "PASS" if s["ok"] else "FAIL"
    print(
        f"part 1 {verdict}: {s['passed']}/{s['collected']} passed, {s['failed']} failed, {s['error']} errors, {s['skipped']} skipped"
    )
    return 0 if s["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", help="test files, run in this order")
    p.add_argument("--json", type=Path, help="where to write the outcomes")
    p.add_argument("--collect-only", action="store_true", help="collect the GPU tests, run nothing")
    p.add_argument("--per-test-timeout", type=int, default=90, help="seconds (pytest-timeout)")
    args = p.parse_args(argv)
    missing = [f for f in args.files if not (ROOT / f).is_file()]
    if missing:
        p.error(f"no such test file: {', '.join(missing)}")
    if args.collect_only:
        return collect(args.files)
    if args.json is None:
        p.error("--json PATH is needed to run the tests")
    return run(args.files, args.json, args.per_test_timeout)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
