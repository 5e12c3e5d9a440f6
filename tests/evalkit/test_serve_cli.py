"""`evalkit serve` refuses a bad port, a busy port, an unknown host and bad timeouts with one `error:` line
(exit 2, no traceback) before it loads any model: the --model below does not even exist."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def serve(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "evalkit", "serve", "--model", "/no/such/checkpoint", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO, env=env)


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "99999"], "--port must be between 0 and 65535 (0 picks a free port), got 99999"),
        (["--port", "-1"], "--port must be between 0 and 65535"),
        (["--host", "no-such-host.invalid"], "cannot listen on no-such-host.invalid:8000: unknown host"),
        (
            ["--port", "0", "--request-timeout", "nan"],
            "--request-timeout must be a positive number of seconds",
        ),
        (["--port", "0", "--body-timeout", "0"], "--body-timeout must be a positive number of seconds"),
        (["--port", "0", "--max-slots", "0"], "--max-slots must be at least 1, got 0"),
        (["--port", "0", "--backend", "nope"], "unknown backend 'nope'"),
    ],
)
def test_bad_serve_options_are_one_line_errors_before_the_model_loads(args, message):
    done = serve(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_port_in_use_is_named_before_the_model_loads(busy_port):
    done = serve("--port", str(busy_port))
    assert done.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{busy_port}: Address already in use" in done.stderr
    assert "pick another --port" in done.stderr and "checkpoint" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
