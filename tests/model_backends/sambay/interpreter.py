"""Run a kernel test file as its own Triton-interpreter worker: the one helper every such file uses.

TRITON_INTERPRET must be set before triton is first imported, and the rest of the suite imports it
without, so each kernel test file runs itself in a child process with the interpreter on (and CUDA
hidden); the child prints one JSON object of figures that the parent's tests then check. A file does

    interpreter_figures = worker_fixture(__file__)  # the module-scoped fixture its tests take
    ...
    if __name__ == "__main__":
        worker_main(_run_all)  # the child: compute the figures, print them
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
HAS_TRITON = importlib.util.find_spec("triton") is not None


def run_worker(test_file: str, timeout: int = 240) -> dict:
    """`python test_file` under the interpreter; its last stdout line parsed as JSON."""
    if not HAS_TRITON:
        pytest.skip("triton is not importable, so its interpreter cannot run the kernels")
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, test_file], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def worker_fixture(test_file: str, timeout: int = 240) -> Callable[[], dict]:
    """A module-scoped fixture that runs `test_file` once as the worker and returns its figures."""

    @pytest.fixture(scope="module")
    def interpreter_figures() -> dict:
        return run_worker(test_file, timeout)

    return interpreter_figures


def worker_main(figures: Callable[[], dict]) -> None:
    """The child's side: refuse to run without the interpreter, print the figures as one JSON line."""
    assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"
    print(json.dumps(figures()))
