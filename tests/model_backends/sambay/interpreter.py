"""Run a kernel test file as its own Triton-interpreter worker.

TRITON_INTERPRET must be set before triton is first imported, and the rest of the suite imports it
without, so each kernel test file runs itself in a child process with the interpreter on (and CUDA
hidden); the child prints one JSON object of figures that the parent's tests then check.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_worker(test_file: str, timeout: int = 240) -> dict:
    """`python test_file` under the interpreter; its last stdout line parsed as JSON."""
    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not importable, so its interpreter cannot run the kernels")
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, test_file], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
