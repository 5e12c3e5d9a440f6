"""The `sambay` backend through the registry on a tiny checkpoint: completions, lazy pulling, the push
API for servers, provenance and the one-line errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from evalkit.core.errors import BackendError
from evalkit.core.types import Backend, GenerationRequest, SamplingParams
from model_backends.registry import BackendOptions, make_backend
from model_backends.sambay.testing import make_tiny_checkpoint

HAS_TRITON = importlib.util.find_spec("triton") is not None


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=1)


@pytest.fixture(scope="module")
def backend(checkpoint):
    return make_backend("sambay", BackendOptions(model=str(checkpoint), max_slots=3))


def request(rid: str, n: int = 2, max_new: int = 10, **kw) -> GenerationRequest:
    return GenerationRequest(
        request_id=rid,
        messages=({"role": "user", "content": f"What is {len(rid)} plus 2?"},),
        sample_indices=tuple(range(n)),
        seeds=tuple(range(100, 100 + n)),
        sampling=SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=max_new, **kw),
        prompt_text=None,
    )


def test_generate_yields_one_completion_per_sample(backend):
    assert isinstance(backend, Backend) and backend.name == "sambay"
    reqs = [request("a"), request("bb", n=3), request("ccc", n=1)]
    done = list(backend.generate(reqs))
    assert sorted((c.request_id, c.sample_index) for c in done) == [
        ("a", 0), ("a", 1), ("bb", 0), ("bb", 1), ("bb", 2), ("ccc", 0)
    ]  # fmt: skip
    for c in done:
        assert c.finish_reason in ("stop", "length")
        assert 1 <= c.num_generated_tokens <= 10
        assert (c.finish_reason == "length") == (c.num_generated_tokens == 10)
        assert c.num_prompt_tokens == len(backend.encode(request(c.request_id)))
        assert c.seconds > 0 and c.extra["seed"] == 100 + c.sample_index
        assert "<|end|>" not in c.text  # special tokens are not in the text


def test_same_seeds_same_text_in_a_different_mix(backend):
    first = {(c.request_id, c.sample_index): c.text for c in backend.generate([request("a", n=3)])}
    mixed = backend.generate([request("zzzz", n=2, max_new=7), request("a", n=3), request("q", n=2)])
    again = {(c.request_id, c.sample_index): c.text for c in mixed if c.request_id == "a"}
    assert again == first


def test_prompt_text_wins_over_messages(backend):
    rendered = "<|user|>hello<|end|><|assistant|>"
    req = GenerationRequest(
        "t", ({"role": "user", "content": "ignored"},), (0,), (1,), SamplingParams(), rendered
    )
    assert backend.encode(req) == backend.tokenizer(rendered, add_special_tokens=False)["input_ids"]


def test_requests_are_pulled_lazily(backend):
    pulled = []

    def feed():
        for i in range(10):
            pulled.append(i)
            yield request(f"r{i}", n=2, max_new=4)

    stream = backend.generate(feed())
    next(stream)
    assert len(pulled) <= 3  # 3 slots: no more than they can take before the first sample finishes
    assert len(list(stream)) == 19 and len(pulled) == 10


def test_push_api_for_servers(backend):
    backend.add_request(request("x", n=2, max_new=6))
    done = backend.step()
    backend.add_request(request("y", n=1, max_new=6))
    while backend.has_work():
        done += backend.step()
    assert sorted((c.request_id, c.sample_index) for c in done) == [("x", 0), ("x", 1), ("y", 0)]


def test_abort_drops_one_request_and_frees_its_slots(backend):
    alone = {c.sample_index: c.text for c in backend.generate([request("y", n=2, max_new=6)])}
    backend.add_request(request("x", n=3, max_new=10))  # 3 slots: x's parent waits for a free one
    backend.add_request(request("y", n=2, max_new=6))
    done = backend.step()
    assert done == [] and backend.engine.scheduler.running  # x is running when it is dropped
    backend.abort("x")
    backend.abort("no-such-request")  # ignored
    while backend.has_work():
        done += backend.step()
    assert sorted((c.request_id, c.sample_index) for c in done) == [("y", 0), ("y", 1)]
    assert {c.sample_index: c.text for c in done} == alone  # y is unaffected by x and its abort
    scheduler = backend.engine.scheduler
    assert sorted(scheduler.free) == list(range(3)) and not scheduler.running and not scheduler.groups


CHAT_CASES = {  # messages -> the prompt `run` sends (the tiny checkpoint's Phi chat template)
    "user": (
        [{"role": "user", "content": "What is 2 plus 2?"}],
        "<|user|>What is 2 plus 2?<|end|><|assistant|>",
    ),
    "system+user": (
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "<|system|>Be brief.<|end|><|user|>Hi<|end|><|assistant|>",
    ),
}


@pytest.mark.parametrize("template", [True, False], ids=["chat-template", "no-template"])
@pytest.mark.parametrize(("messages", "prompt"), CHAT_CASES.values(), ids=CHAT_CASES.keys())
def test_render_prompt_is_what_run_sends(backend, monkeypatch, messages, prompt, template):
    if not template:  # a checkpoint without a chat template gets the plain Phi format, not an error
        monkeypatch.setattr(backend.tokenizer, "chat_template", None)
    assert backend.render_prompt(messages) == prompt
    req = GenerationRequest("m", tuple(messages), (0,), (1,), SamplingParams())
    assert backend.encode(req) == backend.tokenizer(prompt, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize(
    ("declared", "option", "limit"),
    [
        (None, None, 65536),  # config.json declares none: the model card's 64K
        (300, None, 300),  # the checkpoint's own max_position_embeddings
        (300, 64, 64),  # an engine option may lower it...
        (300, 10**6, 300),  # ...never raise it
    ],
)
def test_context_limit_comes_from_the_checkpoint(tmp_path, declared, option, limit):
    overrides = {} if declared is None else {"max_position_embeddings": declared}
    checkpoint = make_tiny_checkpoint(tmp_path / "ckpt", seed=1, **overrides)
    extra = {} if option is None else {"context_limit": option}
    backend = make_backend("sambay", BackendOptions(model=str(checkpoint), extra=extra))
    assert backend.context_limit == backend.engine.context_limit == limit
    if limit < 1000:
        with pytest.raises(BackendError, match=f"exceeds the context limit {limit};"):
            list(backend.generate([request("a", max_new=limit)]))


def test_stop_strings_cut_the_text(backend):
    free = {c.sample_index: c.text for c in backend.generate([request("s", n=4, max_new=30)])}
    sample, text = next((i, t) for i, t in free.items() if len(t) > 6)
    stop = text[3:5]  # a string this sample is known to produce
    cut = {c.sample_index: c for c in backend.generate([request("s", n=4, max_new=30, stop=(stop,))])}
    assert cut[sample].finish_reason == "stop"
    assert cut[sample].text == text[: text.find(stop)]


def test_model_info(backend, checkpoint):
    info = backend.model_info()
    assert info["engine"] == "evalkit-sambay" and info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["path"] == str(checkpoint.resolve()) and len(info["content_hash"]) == 16
    assert info["engine_config"]["max_slots"] == 3 and info["engine_config"]["context_limit"] is None
    assert info["max_context"] == backend.context_limit == 65536  # the tiny config.json declares none
    assert info["ops"].startswith("reference PyTorch ops (device cpu")


def test_backend_describes_its_ops_and_prints_nothing(checkpoint, capsys, monkeypatch):
    monkeypatch.delenv("EVALKIT_SAMBAY_OPS", raising=False)
    backend = make_backend("sambay", BackendOptions(model=str(checkpoint), max_slots=2))
    assert capsys.readouterr().err == ""  # the CLI prints describe(); a library prints nothing
    line = "sambay: reference PyTorch ops (device cpu; the Triton kernels need CUDA) on cpu, float32"
    assert backend.describe() == line and backend.model.ops.mode == "auto"


@pytest.mark.parametrize(
    ("env", "extra", "mode"),
    [
        (None, {}, "auto"),
        ("reference", {}, "reference"),  # the environment supplies the default...
        ("reference", {"ops": "triton"}, "triton"),  # ...and the caller's option wins over it
        (" Triton ", {}, "triton"),
    ],
)
def test_ops_mode_is_read_when_the_backend_is_built(checkpoint, monkeypatch, env, extra, mode):
    if env is None:
        monkeypatch.delenv("EVALKIT_SAMBAY_OPS", raising=False)
    else:
        monkeypatch.setenv("EVALKIT_SAMBAY_OPS", env)
    backend = make_backend("sambay", BackendOptions(model=str(checkpoint), max_slots=2, extra=extra))
    assert backend.model.ops.mode == mode
    assert backend.engine.runner.graph_mode == "eager"  # CPU: never CUDA graphs, whatever the mode


def test_misspelt_ops_setting_is_a_clear_error(checkpoint, monkeypatch):
    monkeypatch.setenv("EVALKIT_SAMBAY_OPS", "refrence")
    with pytest.raises(BackendError, match="EVALKIT_SAMBAY_OPS='refrence' is not a mode; set it to auto"):
        make_backend("sambay", BackendOptions(model=str(checkpoint)))
    with pytest.raises(BackendError, match="sambay option ops='fast' is not a mode"):
        make_backend("sambay", BackendOptions(model=str(checkpoint), extra={"ops": "fast"}))


# What a model on CUDA runs, by ops mode (and whether triton imports here).
OPS_LINES = {
    "auto": "Triton kernels" if HAS_TRITON else "reference PyTorch ops (triton does not import",
    "reference": "reference PyTorch ops (forced by EVALKIT_SAMBAY_OPS=reference)",
    "triton": "Triton kernels" if HAS_TRITON else "reference PyTorch ops (triton does not import",
}


@pytest.mark.parametrize("mode", list(OPS_LINES))
def test_ops_line_on_cuda_by_mode(mode):
    from model_backends.sambay.ops.dispatch import Ops

    assert Ops.parse(mode, "EVALKIT_SAMBAY_OPS").describe("cuda").startswith(OPS_LINES[mode])
    assert (
        Ops.parse(mode, "EVALKIT_SAMBAY_OPS").describe("cpu")
        == "reference PyTorch ops (device cpu; the Triton kernels need CUDA)"
    )


def test_misspelt_ops_mode_is_refused():
    from model_backends.sambay.errors import ConfigError
    from model_backends.sambay.ops.dispatch import Ops

    with pytest.raises(ConfigError, match="EVALKIT_SAMBAY_OPS='refrence' is not a mode; set it to auto"):
        Ops.parse("refrence", "EVALKIT_SAMBAY_OPS")
    assert Ops.parse(None, "X") == Ops.parse(" ", "X") == Ops("auto") and Ops.parse("Triton", "X") == Ops(
        "triton"
    )


@pytest.mark.parametrize(
    "options, message",
    [
        (BackendOptions(model=None), "the sambay backend needs --model"),
        (BackendOptions(model="/nonexistent/folder"), "not found"),
        (BackendOptions(model="CKPT", device="cuda:0"), "no CUDA GPU"),
        (BackendOptions(model="CKPT", dtype="int8"), "unknown dtype"),
        (BackendOptions(model="CKPT", extra={"max_slot": 2}), "unknown sambay backend option"),
    ],
)
def test_cannot_start_errors(checkpoint, options, message):
    if options.device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    if options.model == "CKPT":
        options = BackendOptions(**{**options.__dict__, "model": str(checkpoint)})
    with pytest.raises(BackendError, match=message):
        make_backend("sambay", options)


def test_over_long_prompt_is_a_clear_error(checkpoint):
    backend = make_backend("sambay", BackendOptions(model=str(checkpoint), extra={"context_limit": 64}))
    with pytest.raises(
        BackendError, match=r"prompt of \d+ tokens \+ max_new_tokens 60 exceeds the context limit 64"
    ):
        list(backend.generate([request("a", max_new=60)]))


def test_empty_prompt_is_a_clear_error(backend):
    req = GenerationRequest("e", (), (0,), (1,), SamplingParams(), prompt_text="")
    with pytest.raises(BackendError, match="the prompt is empty"):
        list(backend.generate([req]))
