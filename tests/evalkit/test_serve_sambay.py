"""A real `evalkit serve` process on 127.0.0.1 serving a tiny SambaY checkpoint (issues 8, 15):
HTTP through the openai backend gives the in-process sambay backend's completions for the same seeds,
100 concurrent SDK clients are all answered, streaming equals the whole answer, a disconnected client's
slots are freed, and no slot stays busy afterwards."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
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


def test_hundred_concurrent_sdk_clients_answered_and_no_slot_leaks(served):
    """100 clients of the official SDK at once (chat, completions, streaming, a few bad requests)."""
    url, name = served
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)

    def ask(i: int) -> str:
        n = 0 if i % 10 == 9 else 1 + i % 3  # a few bad requests in the crowd: n = 0
        common = dict(model=name, seed=i, n=n, max_tokens=4)
        try:
            if i % 4 == 1:
                stream = client.chat.completions.create(
                    messages=[{"role": "user", "content": f"What is {i} plus 1?"}], stream=True, **common
                )
                indices = {c.index for chunk in stream for c in chunk.choices if c.finish_reason}
                assert indices == set(range(n))
            elif i % 2:
                answer = client.chat.completions.create(
                    messages=[{"role": "user", "content": f"What is {i} plus 1?"}], **common
                )
                assert len(answer.choices) == n
            else:
                answer = client.completions.create(
                    prompt=f"<|user|>What is {i} times 2?<|end|><|assistant|>", **common
                )
                assert len(answer.choices) == n
        except openai.BadRequestError as err:
            return f"400 {err.param}"
        return "ok"

    with ThreadPoolExecutor(max_workers=100) as pool:
        outcomes = list(pool.map(ask, range(100)))
    assert outcomes == ["400 n" if i % 10 == 9 else "ok" for i in range(100)]
    health = httpx.get(url.removesuffix("/v1") + "/health", timeout=30).json()
    assert health["status"] == "ok" and health["in_flight"] == 0
    assert health["slots"]["busy"] == 0 and health["slots"]["total"] == 4


def test_sdk_streaming_gives_the_non_streamed_samples_and_models_retrieve_works(served):
    url, name = served
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)
    assert client.models.retrieve(name).id == name and [m.id for m in client.models.list()] == [name]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    common = dict(model=name, messages=[{"role": "developer", "content": "Be brief."},
                  {"role": "user", "content": "What is 3 plus 4?"}], n=3, seed=99, max_tokens=12)  # fmt: skip
    whole = client.chat.completions.create(**common)
    texts = [""] * 3
    stream = client.chat.completions.create(**common, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == [c.message.content for c in whole.choices]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_a_disconnected_client_frees_its_engine_slots_within_a_few_steps(served):
    url, name = served
    root = url.removesuffix("/v1")
    host, port = root.removeprefix("http://").split(":")
    body = json.dumps(
        {"model": name, "prompt": "<|user|>count<|end|><|assistant|>", "n": 8, "max_tokens": 4000}
    )
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(
        f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
    )
    deadline = time.monotonic() + 60
    while (health := httpx.get(root + "/health", timeout=30).json())["slots"]["busy"] < 4:
        assert time.monotonic() < deadline, health
    sock.close()
    closed_at = health["steps"]
    while (health := httpx.get(root + "/health", timeout=30).json())["in_flight"] or health["slots"]["busy"]:
        assert time.monotonic() < deadline, health
    assert health["steps"] - closed_at <= 10  # 8 samples x 4000 tokens on 4 slots would be ~8000 steps


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
