"""Scheduling against a fake model whose state is a hash of all tokens seen: forks, slot recycling,
parent slots, re-prefill, lazy pulling and flat memory, each checked against the full-forward oracle."""

from __future__ import annotations

import re

import pytest

from model_backends.sambay.engine import EngineConfig, LLMEngine, Request, SamplingParams
from model_backends.sambay.engine.scheduler import Scheduler
from model_backends.sambay.engine.sequence import Group, Sequence
from model_backends.sambay.errors import ConfigError, RequestError
from tests.model_backends.sambay.fake_model import FakeModel, naive_generate


def request(rid: str, n: int, temperature=1.0, top_p=0.9, max_new_tokens=12, seed0=100) -> Request:
    return Request(
        request_id=rid,
        sample_indices=tuple(range(n)),
        seeds=tuple(seed0 + 1000 * i + len(rid) for i in range(n)),
        sampling=SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens),
    )


PROMPTS = {
    "a": [1, 2, 3],
    "bb": [5, 4, 3, 2, 1, 0, 7],
    "ccc": [9],
    "dddd": [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 11],
}


def run(engine: LLMEngine, reqs: list[Request]) -> dict[tuple[str, int], Sequence]:
    return {
        (s.request_id, s.sample_index): s for s in engine.generate((r, PROMPTS[r.request_id]) for r in reqs)
    }


def check_against_oracle(model, reqs, done, stop_ids=()):
    assert len(done) == sum(r.n for r in reqs)
    for r in reqs:
        for index, seed in zip(r.sample_indices, r.seeds, strict=True):
            want, reason = naive_generate(model, PROMPTS[r.request_id], seed, r.sampling, stop_ids)
            seq = done[(r.request_id, index)]
            assert seq.generated == want, (r.request_id, index)
            assert seq.finish_reason == reason


# (max_slots, samples per request, max_new_tokens): from "all fit" to "a parent waits for slots" to a
# single slot, where the parent must be given up and the problem prefilled again.
CASES = [(16, 3, 12), (4, 3, 12), (3, 5, 9), (2, 4, 7), (1, 3, 5), (5, 1, 1)]


@pytest.mark.parametrize(
    "max_slots, n, max_new", CASES, ids=[f"slots{c[0]}-n{c[1]}-new{c[2]}" for c in CASES]
)
def test_every_sample_matches_the_oracle(max_slots, n, max_new):
    model = FakeModel()
    engine = LLMEngine(model, EngineConfig(max_slots=max_slots))
    reqs = [request(rid, n, max_new_tokens=max_new) for rid in PROMPTS]
    done = run(engine, reqs)
    check_against_oracle(model, reqs, done)
    assert len(model.pools) == 1 and model.pools[0].num_slots == max_slots  # memory stays flat
    if max_slots > 1:
        assert model.prefilled_prompts == len(reqs)  # one prefill per problem
    assert not engine.has_work()


def test_one_parent_prefill_per_problem_even_with_few_slots():
    model = FakeModel()
    engine = LLMEngine(model, EngineConfig(max_slots=2))
    reqs = [request("dddd", 9, max_new_tokens=4)]
    done = run(engine, reqs)
    check_against_oracle(model, reqs, done)
    assert model.prefilled_prompts == 1


def test_stop_tokens_and_lengths():
    model = FakeModel(vocab_size=6)  # small vocabulary: stop tokens are drawn often
    stop = {0, 5}
    engine = LLMEngine(model, EngineConfig(max_slots=3), stop_token_ids=stop)
    reqs = [request(rid, 4, max_new_tokens=10) for rid in PROMPTS]
    done = run(engine, reqs)
    check_against_oracle(model, reqs, done, stop)
    reasons = {s.finish_reason for s in done.values()}
    assert reasons == {"stop", "length"}
    for seq in done.values():
        assert (seq.generated[-1] in stop) == (seq.finish_reason == "stop")
        assert len(seq.generated) <= 10


def test_ignore_stop_tokens_runs_to_max_new_tokens():
    model = FakeModel(vocab_size=6)
    engine = LLMEngine(model, EngineConfig(max_slots=3, ignore_stop_tokens=True), stop_token_ids={0, 5})
    done = run(engine, [request(rid, 2, max_new_tokens=10) for rid in PROMPTS])
    assert {len(s.generated) for s in done.values()} == {10}
    assert {s.finish_reason for s in done.values()} == {"length"}


def test_stop_strings_use_the_decoded_tail():
    model = FakeModel(vocab_size=6)
    letters = "abcdef"
    engine = LLMEngine(
        model, EngineConfig(max_slots=4), detokenize=lambda ids: "".join(letters[i] for i in ids)
    )
    sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=40, stop=("ab",))
    req = Request("a", (0, 1, 2, 3), (1, 2, 3, 4), sampling)
    done = list(engine.generate([(req, PROMPTS["a"])]))
    for seq in done:
        text = "".join(letters[i] for i in seq.generated)
        if seq.finish_reason == "stop":
            assert text.endswith("ab") and "ab" not in text[:-1] and seq.stop_string == "ab"
        else:
            assert "ab" not in text and len(seq.generated) == 40
    assert any(s.finish_reason == "stop" for s in done)


@pytest.mark.parametrize(
    "prompt, max_new, message",
    [
        ([], 5, "the prompt is empty"),
        (list(range(4000)), 200, "prompt of 4000 tokens + max_new_tokens 200 exceeds the context limit 4096"),
    ],
)
def test_bad_prompts_are_refused_with_a_clear_error(prompt, max_new, message):
    engine = LLMEngine(FakeModel(max_position_embeddings=4096), EngineConfig(max_slots=2))
    with pytest.raises(RequestError, match=re.escape(message)):
        engine.add_request(request("x", 1, max_new_tokens=max_new), prompt)


def test_generate_pulls_requests_lazily():
    model = FakeModel()
    engine = LLMEngine(model, EngineConfig(max_slots=4))
    pulled = []

    def feed():
        for i in range(20):
            pulled.append(i)
            yield request("a", 2, max_new_tokens=6, seed0=i), PROMPTS["a"]

    stream = engine.generate(feed())
    next(stream)
    assert len(pulled) <= 4  # only what the 4 free slots could take, not the whole stream
    rest = list(stream)
    assert len(rest) == 39 and len(pulled) == 20


def test_push_api_for_servers():
    model = FakeModel()
    engine = LLMEngine(model, EngineConfig(max_slots=3))
    engine.add_request(request("bb", 2), PROMPTS["bb"])
    done = engine.step()  # the first step prefills, forks and decodes one token
    engine.add_request(request("a", 2), PROMPTS["a"])  # arrives while "bb" is running
    while engine.has_work():
        done += engine.step()
    assert sorted((s.request_id, s.sample_index) for s in done) == [("a", 0), ("a", 1), ("bb", 0), ("bb", 1)]
    check_against_oracle(
        model, [request("bb", 2), request("a", 2)], {(s.request_id, s.sample_index): s for s in done}
    )


# (slots, steps before the abort): "dddd" (5 samples) is queued, or holds its parent while samples run,
# or has all its samples running; the other requests must come out exactly as without it.
ABORT_CASES = {
    "queued-before-any-step": (3, 0),
    "parent-waiting-for-slots": (3, 1),
    "all-samples-running": (8, 2),
    "single-slot": (1, 3),
}


@pytest.mark.parametrize("max_slots, steps", ABORT_CASES.values(), ids=ABORT_CASES.keys())
def test_abort_request_drops_only_that_request(max_slots, steps):
    model = FakeModel()
    engine = LLMEngine(model, EngineConfig(max_slots=max_slots))
    keep = [request("a", 2, max_new_tokens=6), request("ccc", 3, max_new_tokens=9)]
    engine.add_request(request("dddd", 5, max_new_tokens=30), PROMPTS["dddd"])
    for r in keep:
        engine.add_request(r, PROMPTS[r.request_id])
    done = []
    for _ in range(steps):
        done += engine.step()
    engine.abort_request("dddd")
    engine.abort_request("unknown")  # ignored
    while engine.has_work():
        done += engine.step()
    assert all(s.request_id != "dddd" for s in done)
    check_against_oracle(model, keep, {(s.request_id, s.sample_index): s for s in done})
    assert sorted(engine.scheduler.free) == list(range(max_slots)) and not engine.scheduler.running
    assert not engine.scheduler.holds_parent() and len(model.pools) == 1


def test_a_request_sent_again_after_its_abort_runs_in_full():
    model = FakeModel()
    engine = LLMEngine(model, EngineConfig(max_slots=3))
    engine.add_request(request("bb", 2, max_new_tokens=20), PROMPTS["bb"])
    done = engine.step()
    again = request("bb", 2, max_new_tokens=5, seed0=7)
    engine.abort_request("bb")
    engine.add_request(again, PROMPTS["bb"])  # same id, before the step that applies the abort
    while engine.has_work():
        done += engine.step()
    check_against_oracle(model, [again], {(s.request_id, s.sample_index): s for s in done})


def test_context_limit_is_the_checkpoints_lowered_by_the_option():
    assert LLMEngine(FakeModel(max_position_embeddings=4096)).context_limit == 4096
    assert (
        LLMEngine(FakeModel(max_position_embeddings=4096), EngineConfig(context_limit=100)).context_limit
        == 100
    )
    assert (
        LLMEngine(FakeModel(max_position_embeddings=4096), EngineConfig(context_limit=10**6)).context_limit
        == 4096
    )
    assert LLMEngine(FakeModel(max_position_embeddings=None)).context_limit == 65536  # undeclared
    with pytest.raises(ConfigError, match="context_limit must be an integer >= 1"):
        LLMEngine(FakeModel(), EngineConfig(context_limit=0))
    engine = LLMEngine(FakeModel(max_position_embeddings=64), EngineConfig(seq_len_multiple=1024))
    engine.add_request(request("a", 2, max_new_tokens=40), PROMPTS["a"])
    engine.step()
    assert engine.runner.max_seq_len == 64  # the pool is never sized past the limit


def test_longer_request_later_grows_the_pool_after_draining():
    model = FakeModel()
    engine = LLMEngine(model, EngineConfig(max_slots=2, seq_len_multiple=16))
    reqs = [request("a", 2, max_new_tokens=5), request("dddd", 2, max_new_tokens=30)]
    done = run(engine, reqs)
    check_against_oracle(model, reqs, done)
    assert [p.max_seq_len for p in model.pools] == [16, 48]


def seqs(rid: str, n: int) -> Group:
    sampling = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=4)
    return Group(rid, [1, 2], [Sequence(rid, i, i, [1, 2], sampling) for i in range(n)])


def test_scheduler_keeps_one_parent_and_last_sample_takes_it_over():
    sched = Scheduler(num_slots=3, max_seq_len=10, max_prefill_tokens=100)
    first, second = seqs("p", 4), seqs("q", 1)
    sched.add(first)
    sched.add(second)
    batch = sched.schedule()
    assert batch.prefills == [(first, first.parent_slot)]  # "q" waits behind the parent-holding "p"
    parent = first.parent_slot
    assert [(s.sample_index, src) for s, _, src in batch.starts] == [(0, parent), (1, parent)]
    assert batch.running == [] and batch.decode == batch.new
    # first tokens then one decode token each: 4 tokens for 2 new rows, none finishes (max_new_tokens 4)
    assert sched.postprocess(batch, [7, 8, 9, 10]) == [] and batch.generated == 4
    assert [s.generated for s in batch.new] == [[7, 9], [8, 10]] and sched.running == batch.new
    sched.finish(batch.starts[0][0])
    batch2 = sched.schedule()
    # one free slot, two samples left: sample 2 gets a copy, sample 3 (the last) takes over the parent
    # slot itself; "q" still has no slot.
    assert batch2.prefills == [] and batch2.running == [batch.starts[1][0]]
    assert [(s.sample_index, src) for s, _, src in batch2.starts] == [(2, parent), (3, None)]
    assert batch2.starts[1][0].slot == parent and first.parent_slot is None
    sched.postprocess(batch2, [1, 2, 3, 4, 5])
    sched.finish(batch.starts[1][0])
    batch3 = sched.schedule()
    assert batch3.prefills == [(second, batch3.starts[0][0].slot)] and len(batch3.starts) == 1


def test_per_sample_max_new_tokens():
    model = FakeModel()
    engine = LLMEngine(model, EngineConfig(max_slots=2))
    engine.add_request(request("bb", 3, max_new_tokens=99), PROMPTS["bb"], max_new_tokens=[3, 17, 8])
    done = []
    while engine.has_work():
        done += engine.step()
    assert {s.sample_index: len(s.generated) for s in done} == {0: 3, 1: 17, 2: 8}
    assert model.pools[0].max_seq_len == 1024  # sized for the longest sample, rounded up


def test_long_stream_leaves_nothing_behind():
    """Hundreds of problems through 5 slots: one pool, every slot free at the end, no state retained."""
    model = FakeModel()
    engine = LLMEngine(model, EngineConfig(max_slots=5))
    items = (
        (request(f"r{i}", 1 + i % 4, max_new_tokens=1 + i % 5, seed0=i), [i % 7 + 1, 2]) for i in range(300)
    )
    done = list(engine.generate(items))
    assert len(done) == sum(1 + i % 4 for i in range(300))
    assert len(model.pools) == 1
    assert sorted(engine.scheduler.free) == list(range(5))
    assert not engine.scheduler.running and not engine.scheduler.groups and not engine._incoming
    assert all(s.slot is None and s.finish_reason == "length" for s in done)


def test_abandoned_generate_does_not_leak_into_the_next_call():
    model = FakeModel()
    engine = LLMEngine(model, EngineConfig(max_slots=3))
    stream = engine.generate([(request("a", 4, max_new_tokens=20), PROMPTS["a"])])
    next(stream)
    stream.close()  # the caller walked away with samples still running
    assert not engine.has_work()
    reqs = [request("bb", 2, max_new_tokens=5)]
    done = run(engine, reqs)
    assert sorted(done) == [("bb", 0), ("bb", 1)]
    check_against_oracle(model, reqs, done)
