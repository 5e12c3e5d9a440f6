"""A real `evalkit serve` process on 127.0.0.1 serving a tiny SambaY checkpoint (issue 8):
HTTP through the openai backend gives the in-process sambay backend's completions for the same seeds,
100 concurrent requests are all answered, and no slot stays busy afterwards."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from evalkit.core.types import GenerationRequest, SamplingParams, derive_seed
from model_backends.registry import BackendOptions, make_backend

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 180  # loaded CI machines: imports + checkpoint load


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from model_backends.sambay.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-sambay"), seed=0)


@pytest.fixture(scope="module")
def served(checkpoint, tmp_path_factory):
    """(base_url, served model name) of an `evalkit serve` subprocess on a free loopback port."""
    log = tmp_path_factory.mktemp("serve-log") / "stderr.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "evalkit", "serve", "--model", str(checkpoint), "--port", "0"]
    command += ["--host", "127.0.0.1", "--max-slots", "4", "--device", "cpu", "--dtype", "float32"]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO, env=env
        )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        try:
            first = lines.get(timeout=STARTUP_SECONDS)
        except queue.Empty:
            pytest.fail(f"evalkit serve did not start: {log.read_text()[-2000:]}")
        assert " at http://127.0.0.1:" in first, first + log.read_text()[-2000:]
        yield first.rsplit(" at ", 1)[1].strip(), str(checkpoint)
    finally:
        process.terminate()
        process.wait(timeout=30)


def arith_requests(seed: int = 1234, n: int = 2, limit: int = 3, max_new_tokens: int = 12) -> list:
    from tasks import get_task

    task = get_task("arith-demo")
    problems = task.load()[:limit]
    sampling = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=max_new_tokens)
    return [
        GenerationRequest(
            request_id=p.id,
            messages=p.messages,
            sample_indices=tuple(range(n)),
            seeds=tuple(derive_seed(seed, task.name, p.id, k) for k in range(n)),
            sampling=sampling,
        )
        for p in problems
    ]


def as_table(completions) -> dict:
    return {
        (c.request_id, c.sample_index): (c.text, c.num_prompt_tokens, c.num_generated_tokens, c.finish_reason)
        for c in completions
    }


def test_openai_backend_over_http_matches_in_process_sambay(checkpoint, served):
    url, name = served
    requests = arith_requests()
    local = make_backend(
        "sambay", BackendOptions(model=str(checkpoint), device="cpu", dtype="float32", max_slots=4)
    )
    expected = as_table(local.generate(requests))
    remote = make_backend("openai", BackendOptions(model=name, base_url=url, extra={"concurrency": 8}))
    got = list(remote.generate(requests))
    assert as_table(got) == expected
    assert len(got) == 6 and all(
        c.extra["response"]["system_fingerprint"].startswith("evalkit-") for c in got
    )


def test_hundred_concurrent_requests_answered_and_no_slot_leaks(served):
    url, name = served
    root = url.removesuffix("/v1")

    def ask(i: int) -> int:
        body = {"model": name, "seed": i, "n": 1 + i % 3, "max_tokens": 4}
        if i % 10 == 9:  # a few bad requests in the crowd: n = 0
            body["n"] = 0
        if i % 2:
            body["messages"] = [{"role": "user", "content": f"What is {i} plus 1?"}]
            path = "/chat/completions"
        else:
            body["prompt"] = f"<|user|>What is {i} times 2?<|end|><|assistant|>"
            path = "/completions"
        with httpx.Client(timeout=120) as client:
            response = client.post(url + path, json=body)
        if response.status_code == 200:
            assert len(response.json()["choices"]) == body["n"]
        return response.status_code

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(ask, range(100)))
    assert statuses == [400 if i % 10 == 9 else 200 for i in range(100)]
    health = httpx.get(root + "/health", timeout=30).json()
    assert health["status"] == "ok" and health["in_flight"] == 0
    assert health["slots"]["busy"] == 0 and health["slots"]["total"] == 4


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"{oops", 400, "invalid_json"),
        (json.dumps({"model": "nope", "prompt": "x"}).encode(), 404, "model_not_found"),
        (json.dumps({"prompt": "x", "n": 0}).encode(), 400, "invalid_value"),
        (json.dumps({"prompt": "x", "max_tokens": 10**7}).encode(), 400, "context_length_exceeded"),
    ],
)
def test_bad_requests_to_the_real_server(served, body, status, code):
    url, _ = served
    response = httpx.post(url + "/completions", content=body, timeout=30)
    assert response.status_code == status and response.json()["error"]["code"] == code


def run_cli(args: list[str]) -> None:
    from typer.testing import CliRunner

    from evalkit.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def stored(out: Path) -> dict:
    (run_dir,) = [p for p in out.iterdir() if (p / "results.json").exists()]
    records = [json.loads(line) for line in (run_dir / "completions.jsonl").read_text().splitlines()]
    keep = ("seed", "text", "num_prompt_tokens", "num_generated_tokens", "finish_reason", "gold")
    return {(r["problem_id"], r["sample_index"]): tuple(r[k] for k in keep) for r in records}


def test_evalkit_run_through_http_equals_the_in_process_sambay_run(checkpoint, served, tmp_path):
    """Issue 8: a full `evalkit run --backend openai` against the server gives the same completions as
    `--backend sambay` in-process with the same seeds."""
    url, name = served
    common = ["--task", "arith-demo", "--n", "2", "--limit", "3", "--max-new-tokens", "16", "--seed", "7"]
    common += ["--workers", "1"]
    local_args = ["run", "--backend", "sambay", "--model", str(checkpoint), "--device", "cpu"]
    local_args += ["--dtype", "float32", "--max-slots", "4", "--out", str(tmp_path / "local"), *common]
    run_cli(local_args)
    run_cli(
        [
            "run",
            "--backend",
            "openai",
            "--base-url",
            url,
            "--model",
            name,
            "--out",
            str(tmp_path / "http"),
            *common,
        ]
    )
    local, http = stored(tmp_path / "local"), stored(tmp_path / "http")
    assert sorted(http) == [(f"arith-{i:03d}", k) for i in range(3) for k in range(2)]
    assert http == local
