"""The openai backend against a fault-injecting server (fault_server.py): a run finishes in one
invocation with every sample exactly once; a sample that keeps failing does not cancel the others and
is named; retries are visible; messages name no internal class; no prompt text reaches `extra`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalkit.core.errors import BackendError
from evalkit.core.types import GenerationRequest, SamplingParams
from model_backends.registry import BackendOptions, make_backend
from tests.model_backends.fault_server import FaultServer

QUICK = {"backoff": 0.005, "max_backoff": 0.02, "timeout": 0.3}


def requests(num: int = 6, n: int = 4) -> list[GenerationRequest]:
    sampling = SamplingParams(max_new_tokens=8)
    return [
        GenerationRequest(f"p{i}", ({"role": "user", "content": f"secret question {i}"},), tuple(range(n)),
                          tuple(100 * i + k for k in range(n)), sampling)
        for i in range(num)
    ]  # fmt: skip


def backend(server: FaultServer, **extra):
    return make_backend(
        "openai", BackendOptions(model="faulty", base_url=server.url, extra={**QUICK, **extra})
    )


@pytest.mark.parametrize("fault", ["500", "429", "drop", "delay", "malformed", "truncated", "wrong_shape"])
def test_each_kind_of_fault_is_retried_until_the_answer_arrives(fault):
    with FaultServer(mix={fault: 0.5}, delay=0.6) as server:
        client = backend(server)
        lines: list[str] = []
        client.on_retry = lines.append
        got = list(client.generate(requests()))
    keys = sorted((c.request_id, c.sample_index) for c in got)
    assert keys == [(f"p{i}", k) for i in range(6) for k in range(4)]
    assert server.faults[fault] > 0 and client.retries == server.faults[fault] == len(lines)
    for c in got:
        seed = int(c.request_id[1:]) * 100 + c.sample_index
        assert c.text == f"answer for seed {seed}: \\boxed{{{seed % 100}}}"
        assert c.extra["tries"] == server.attempts[seed]
    assert all(line.startswith("openai: p") and " sample " in line and "try " in line for line in lines)
    assert not any("Retryable" in line or "Error:" in line for line in lines)  # words, not class names


def test_a_completion_records_a_request_hash_and_never_the_prompt():
    with FaultServer(mix={}) as server:
        got = list(backend(server).generate(requests(num=2, n=2)))
    for c in got:
        blob = json.dumps(c.extra)
        assert "secret question" not in blob and "messages" not in blob
        assert len(c.extra["request_hash"]) == 16 and c.extra["response"]["id"].startswith("cmpl-")
    assert len({c.extra["request_hash"] for c in got}) == 4  # one body per sample (its own seed)


def test_a_sample_that_always_fails_does_not_cancel_the_others_and_is_named():
    with FaultServer(mix={"500": 0.2}, always_fail={201}) as server:
        got = []
        with pytest.raises(BackendError) as info:
            for completion in backend(server, max_tries=4).generate(requests()):
                got.append(completion)
    assert len(got) == 23 and ("p2", 1) not in {(c.request_id, c.sample_index) for c in got}
    message = str(info.value)
    assert message.startswith("1 sample(s) failed at http://127.0.0.1:") and "p2 sample 1" in message
    assert "after 4 tries: HTTP 500" in message and "the 23 other samples were returned" in message
    assert "\n" not in message and "Retryable" not in message
    assert server.attempts[201] == 4


def test_a_server_that_is_down_stops_the_run_after_consecutive_failures():
    down = pytest.raises(BackendError, match=r"stopped early after 3 samples in a row failed")
    with FaultServer(mix={"500": 1.0}) as server, down as info:
        list(backend(server, max_tries=2, concurrency=1, max_consecutive_failures=3).generate(requests()))
    assert "p0 sample 0, p0 sample 1, p0 sample 2;" in str(info.value)
    assert sum(server.attempts.values()) == 3 * 2  # bounded: no retry storm against a dead server


@pytest.mark.parametrize("status, hint", [(401, "API key"), (404, "--model"), (403, "API key")])
def test_answers_no_retry_can_fix_stop_the_run_at_once(status, hint):
    with (
        FaultServer(status_for_all=status) as server,
        pytest.raises(BackendError, match=f"HTTP {status}") as info,
    ):
        list(backend(server, concurrency=1).generate(requests()))
    assert hint in str(info.value) and sum(server.attempts.values()) == 1


def run_demo(server: FaultServer, out: Path, **extra):
    from evalkit.cli import app

    args = [
        "run",
        "--backend",
        "openai",
        "--base-url",
        server.url,
        "--model",
        "faulty",
        "--task",
        "arith-demo",
    ]
    args += ["--n", "4", "--max-new-tokens", "8", "--out", str(out), "--workers", "1"]
    for key, value in {**QUICK, **extra}.items():
        args += ["--backend-option", f"{key}={value}"]
    return CliRunner().invoke(app, args)


def stored_keys(out: Path) -> list[tuple[str, int]]:
    (run_dir,) = list(out.iterdir())
    lines = (run_dir / "completions.jsonl").read_text().splitlines()
    return [(json.loads(x)["problem_id"], json.loads(x)["sample_index"]) for x in lines]


def test_the_demo_task_finishes_in_one_invocation_against_the_fault_mix(tmp_path):
    """500 12%, 429 + Retry-After 12%, dropped connections 8%, answers past the timeout 6%, malformed
    JSON 4%, truncated 200 bodies 4%: every sample stored once, in one run."""
    with FaultServer(delay=0.6) as server:
        result = run_demo(server, tmp_path)
    assert result.exit_code == 0, result.output
    keys = stored_keys(tmp_path)
    assert sorted(keys) == [(f"arith-{i:03d}", k) for i in range(30) for k in range(4)]  # all, no duplicates
    assert all(server.faults[f] > 0 for f in ("500", "429", "drop", "delay", "malformed", "truncated"))
    (run_dir,) = list(tmp_path.iterdir())
    assert json.loads((run_dir / "results.json").read_text())["final"] is True


def test_a_rerun_after_one_sample_failed_asks_only_for_that_sample(tmp_path):
    from evalkit.core.types import derive_seed

    always = derive_seed(0, "arith-demo", "arith-007", 2)
    with FaultServer(mix={"500": 0.1}, always_fail={always}) as server:
        result = run_demo(server, tmp_path, max_tries=3)
    assert result.exit_code != 0 and isinstance(result.exception, BackendError)
    message = str(result.exception)
    assert "1 sample(s) failed" in message and "arith-007 sample 2" in message
    assert "119 new samples were stored" in message and "(119/120 now)" in message
    assert "re-running the same command keeps them and generates only the 1 missing" in message
    assert len(stored_keys(tmp_path)) == 119
    with FaultServer(mix={}) as healthy:
        assert run_demo(healthy, tmp_path).exit_code == 0
    assert [b["seed"] for b in healthy.bodies] == [always]  # only the missing sample was asked for
    assert sorted(stored_keys(tmp_path)) == [(f"arith-{i:03d}", k) for i in range(30) for k in range(4)]
