"""evalkit serve on deterministic in-process backends: status codes, error shapes, parameters honoured /
accepted / refused, the wire format, seeds and concurrency (through httpx and the official openai SDK)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from evalkit.core.types import GenerationRequest
from tests.evalkit.serve_fakes import (
    CONTEXT,
    PullBackend,
    PushBackend,
    fake_text,
    render,
    sampling,
    serving,
)


@pytest.fixture(scope="module", params=["push", "pull"])
def server(request):
    backend = PushBackend() if request.param == "push" else PullBackend()
    with serving(backend) as (url, service), httpx.Client(base_url=url, timeout=30) as client:
        yield client, service, backend


@pytest.fixture(scope="module")
def sdk(server):
    client, service, backend = server
    yield (
        openai.OpenAI(base_url=str(client.base_url).rstrip("/") + "/v1", api_key="unused", max_retries=0),
        service,
        backend,
    )


CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "two plus two"}], "max_tokens": 5}
PROMPT = {"model": "tiny", "prompt": "abc", "max_tokens": 4}


def _dump(body: dict) -> bytes:
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "path, body, status, code, param",
    [
        ("/v1/chat/completions", b"{not json", 400, "invalid_json", None),
        ("/v1/chat/completions", b"[1, 2]", 400, "invalid_json", None),
        ("/v1/chat/completions", b'{"messages": [], "temperature": NaN}', 400, "invalid_json", None),
        ("/v1/completions", b'{"prompt": "x", "top_p": Infinity}', 400, "invalid_json", None),
        ("/v1/completions", b'{"prompt": "x", "temperature": -Infinity}', 400, "invalid_json", None),
        ("/v1/completions", b'{"prompt": "x", "temperature": 1e999}', 400, "invalid_value", "temperature"),
        ("/v1/chat/completions", _dump({**CHAT, "model": "gpt-9"}), 404, "model_not_found", "model"),
        ("/v1/chat/completions", _dump({**CHAT, "n": 0}), 400, "invalid_value", "n"),
        ("/v1/chat/completions", _dump({**CHAT, "n": 129}), 400, "invalid_value", "n"),
        ("/v1/chat/completions", _dump({**CHAT, "n": "2"}), 400, "invalid_value", "n"),
        ("/v1/chat/completions", _dump({**CHAT, "seed": 2**63}), 400, "invalid_value", "seed"),
        ("/v1/chat/completions", _dump({**CHAT, "max_tokens": CONTEXT}), 400, "context_length_exceeded", "max_tokens"),
        ("/v1/chat/completions", _dump({**CHAT, "max_tokens": 0}), 400, "invalid_value", "max_tokens"),
        ("/v1/chat/completions", _dump({**CHAT, "max_tokens": 2.5}), 400, "invalid_value", "max_tokens"),
        ("/v1/chat/completions", _dump({**CHAT, "max_tokens": True}), 400, "invalid_value", "max_tokens"),
        ("/v1/chat/completions", _dump({**CHAT, "max_completion_tokens": 3}), 400, "invalid_value", "max_tokens"),
        ("/v1/chat/completions", _dump({**CHAT, "temperature": -1}), 400, "invalid_value", "temperature"),
        ("/v1/chat/completions", _dump({**CHAT, "temperature": 2.5}), 400, "invalid_value", "temperature"),
        ("/v1/chat/completions", _dump({**CHAT, "temperature": "hot"}), 400, "invalid_value", "temperature"),
        ("/v1/chat/completions", _dump({**CHAT, "top_p": 0}), 400, "invalid_value", "top_p"),
        ("/v1/chat/completions", _dump({**CHAT, "top_p": 1.01}), 400, "invalid_value", "top_p"),
        ("/v1/chat/completions", _dump({**CHAT, "stop": [1]}), 400, "invalid_value", "stop"),
        ("/v1/chat/completions", _dump({**CHAT, "stream": "yes"}), 400, "invalid_value", "stream"),
        ("/v1/chat/completions", _dump({**CHAT, "stream_options": {"include_usage": True}}), 400, "invalid_value", "stream_options"),
        ("/v1/chat/completions", _dump({**CHAT, "stream": True, "stream_options": {"x": 1}}), 400, "unknown_parameter", "stream_options.x"),
        ("/v1/chat/completions", _dump({"model": "tiny", "messages": []}), 400, "missing_messages", "messages"),
        ("/v1/chat/completions", _dump({**CHAT, "messages": [{"role": "tool", "content": "x"}]}), 400, "invalid_value", "messages[0].role"),
        ("/v1/chat/completions", _dump({**CHAT, "messages": [{"role": "user", "content": 5}]}), 400, "invalid_value", "messages[0].content"),
        ("/v1/chat/completions", _dump({**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}), 400, "unsupported_content", "messages[0].content[0]"),
        ("/v1/chat/completions", _dump({**CHAT, "messages": [{"role": "assistant", "content": "", "tool_calls": []}]}), 400, "invalid_value", "messages[0].tool_calls"),
        ("/v1/completions", _dump({**PROMPT, "prompt": [1, 2, 3]}), 400, "bad_prompt", "prompt"),
        ("/v1/completions", _dump({**PROMPT, "prompt": ["a", "b"]}), 400, "bad_prompt", "prompt"),
        ("/v1/completions", _dump({**PROMPT, "prompt": ""}), 400, "bad_prompt", "prompt"),
        ("/v1/completions", _dump({"prompt": "x " * CONTEXT}), 400, "context_length_exceeded", "prompt"),
        ("/v1/embeddings", _dump(CHAT), 404, "not_found", None),
    ],
)  # fmt: skip
def test_bad_requests_get_openai_error_shapes_and_the_server_keeps_serving(
    server, path, body, status, code, param
):
    client, service, _ = server
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert error["message"] and error["type"] == "invalid_request_error" and "\n" not in error["message"]
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert service.in_flight == 0


@pytest.mark.parametrize(
    "path, extra, param",
    [
        ("/v1/chat/completions", {"logprobs": True}, "logprobs"),
        ("/v1/chat/completions", {"top_logprobs": 3}, "top_logprobs"),
        ("/v1/chat/completions", {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ("/v1/chat/completions", {"tool_choice": "auto"}, "tool_choice"),
        ("/v1/chat/completions", {"response_format": {"type": "json_object"}}, "response_format"),
        ("/v1/chat/completions", {"frequency_penalty": 0.5}, "frequency_penalty"),
        ("/v1/chat/completions", {"presence_penalty": -1}, "presence_penalty"),
        ("/v1/chat/completions", {"logit_bias": {"12": 5}}, "logit_bias"),
        ("/v1/chat/completions", {"reasoning_effort": "high"}, "reasoning_effort"),
        ("/v1/chat/completions", {"modalities": ["text", "audio"]}, "modalities"),
        ("/v1/completions", {"logprobs": 2}, "logprobs"),
        ("/v1/completions", {"logprobs": 0}, "logprobs"),
        ("/v1/completions", {"echo": True}, "echo"),
        ("/v1/completions", {"best_of": 2}, "best_of"),
        ("/v1/completions", {"suffix": " end"}, "suffix"),
    ],
)
def test_parameters_that_would_be_ignored_are_refused_naming_them(server, path, extra, param):
    client, _, _ = server
    base = CHAT if path.endswith("chat/completions") else PROMPT
    response = client.post(path, json={**base, **extra})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("unsupported_parameter", param)
    assert f"'{param}'" in error["message"]


@pytest.mark.parametrize(
    "path, key", [("/v1/chat/completions", "top_k"), ("/v1/completions", "max_completion_tokens")]
)
def test_unknown_parameters_are_refused(server, path, key):
    client, _, _ = server
    base = CHAT if path.endswith("chat/completions") else PROMPT
    error = client.post(path, json={**base, key: 1}).json()["error"]
    assert (error["code"], error["param"]) == ("unknown_parameter", key)


@pytest.mark.parametrize(
    "path, extra",
    [
        ("/v1/chat/completions", {"user": "me", "metadata": {"a": "b"}, "store": False, "service_tier": "auto"}),
        ("/v1/chat/completions", {"logprobs": False, "top_logprobs": 0, "tools": [], "tool_choice": "none"}),
        ("/v1/chat/completions", {"frequency_penalty": 0, "presence_penalty": 0.0, "logit_bias": {}}),
        ("/v1/chat/completions", {"response_format": {"type": "text"}, "modalities": ["text"], "max_completion_tokens": 5}),
        ("/v1/completions", {"user": "me", "echo": False, "best_of": 1, "suffix": None, "logprobs": None}),
    ],
)  # fmt: skip
def test_harmless_and_neutral_parameters_are_accepted(server, path, extra):
    client, _, _ = server
    base = CHAT if path.endswith("chat/completions") else PROMPT
    response = client.post(path, json={**base, **extra})
    assert response.status_code == 200, response.text


def test_developer_role_is_the_system_role(server):
    client, _, _ = server
    as_system = {
        **CHAT,
        "seed": 4,
        "messages": [{"role": "system", "content": "be brief"}, *CHAT["messages"]],
    }
    as_developer = {
        **as_system,
        "messages": [{"role": "developer", "content": "be brief"}, *CHAT["messages"]],
    }
    texts = [
        client.post("/v1/chat/completions", json=b).json()["choices"][0]["message"]["content"]
        for b in (as_system, as_developer)
    ]
    assert texts[0] == texts[1]
    request = GenerationRequest("x", tuple(as_system["messages"]), (0,), (0,), sampling(5))
    assert texts[0] == fake_text(request, 4)


def test_defaults_are_the_model_card_sampling_params(server):
    from evalkit.core.types import SamplingParams

    client, _, backend = server
    assert client.post("/v1/completions", json={"prompt": "abc " * 10}).status_code == 200
    if isinstance(backend, PushBackend):
        sent = backend.seen[-1].sampling
        defaults = SamplingParams()
        assert (sent.temperature, sent.top_p) == (defaults.temperature, defaults.top_p)
        assert sent.max_new_tokens == CONTEXT - 10  # the room the prompt leaves (< the 32768 default)


def test_health_and_models_through_the_sdk(sdk):
    client, _, _ = sdk
    assert [m.id for m in client.models.list()] == ["tiny"]
    model = client.models.retrieve("tiny")
    assert (model.id, model.owned_by, model.model_extra["max_model_len"]) == ("tiny", "evalkit", CONTEXT)
    assert client.models.retrieve("/models/tiny").id == "tiny"  # the alias (a path) is accepted too
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("gpt-9")
    assert info.value.code == "model_not_found" and info.value.param == "model"
    health = httpx.get(str(client.base_url).removesuffix("/v1/") + "/health").json()
    assert (health["status"], health["in_flight"]) == ("ok", 0)


def test_chat_with_n_seeds_and_stops_through_the_sdk(sdk):
    client, _, _ = sdk
    answer = client.chat.completions.create(
        model="tiny", messages=CHAT["messages"], max_tokens=5, n=3, seed=40, stop=["w9"], temperature=1.0
    )
    assert answer.object == "chat.completion" and answer.system_fingerprint == "evalkit-test"
    request = GenerationRequest("x", tuple(CHAT["messages"]), (0,), (0,), sampling(5, stop=("w9",)))
    expected = [fake_text(request, 40 + i) for i in range(3)]
    assert any(len(t.split()) < 5 for t in expected), "the stop string should cut at least one sample"
    assert [c.message.content for c in answer.choices] == expected
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert [c.finish_reason for c in answer.choices] == [
        "stop" if len(t.split()) < 5 else "length" for t in expected
    ]
    assert answer.usage.completion_tokens == sum(len(t.split()) for t in expected)
    again = client.chat.completions.create(
        model="tiny", messages=CHAT["messages"], max_tokens=5, n=3, seed=40, stop=["w9"]
    )
    assert [c.message.content for c in again.choices] == expected  # seeds reproduce


def test_one_request_per_sample_equals_one_request_with_n(server):
    client, _, _ = server
    together = client.post("/v1/chat/completions", json={**CHAT, "n": 4, "seed": 7}).json()
    alone = [
        client.post("/v1/chat/completions", json={**CHAT, "n": 1, "seed": 7 + i}).json()["choices"][0]
        for i in range(4)
    ]
    assert [c["message"]["content"] for c in together["choices"]] == [c["message"]["content"] for c in alone]


def test_completions_endpoint_uses_the_prompt_text(sdk):
    client, _, _ = sdk
    answer = client.completions.create(model="/models/tiny", prompt="abc", max_tokens=4, seed=1)
    request = GenerationRequest("x", (), (0,), (0,), sampling(4), prompt_text="abc")
    assert answer.choices[0].text == fake_text(request, 1) and answer.choices[0].finish_reason == "length"
    assert answer.object == "text_completion"


def test_hundred_concurrent_sdk_clients_all_answered_and_nothing_leaks(sdk):
    client, service, backend = sdk

    def ask(i: int) -> list[str]:
        messages = [{"role": "user", "content": f"q{i}"}]
        if i % 4 == 3:
            chunks = client.chat.completions.create(
                model="tiny", messages=messages, max_tokens=5, seed=i, n=1 + i % 3, stream=True
            )
            texts = [""] * (1 + i % 3)
            for chunk in chunks:
                for choice in chunk.choices:
                    texts[choice.index] += choice.delta.content or ""
            return texts
        answer = client.chat.completions.create(
            model="tiny", messages=messages, max_tokens=5, seed=i, n=1 + i % 3
        )
        return [c.message.content for c in answer.choices]

    with ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(ask, range(100)))
    for i, texts in enumerate(answers):
        request = GenerationRequest("x", ({"role": "user", "content": f"q{i}"},), (0,), (0,), sampling(5))
        assert texts == [fake_text(request, i + k) for k in range(1 + i % 3)]
    assert service.in_flight == 0
    if isinstance(backend, PushBackend):
        assert sorted(backend.free) == list(range(backend.num_slots)) and not backend.has_work()
        assert backend.max_batch > 1  # concurrent requests shared engine steps


def test_the_chat_prompt_counted_is_the_backend_template(server):
    client, _, _ = server
    messages = [{"role": "user", "content": "x " * 20}]
    prompt_tokens = len(render(messages).split())  # the template's tokens, not only the content's
    ok = client.post(
        "/v1/chat/completions", json={"messages": messages, "max_tokens": CONTEXT - prompt_tokens}
    )
    over = client.post(
        "/v1/chat/completions", json={"messages": messages, "max_tokens": CONTEXT - prompt_tokens + 1}
    )
    assert ok.status_code == 200 and over.json()["error"]["code"] == "context_length_exceeded"
