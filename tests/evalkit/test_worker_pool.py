"""ScoringPool: the checker's worker processes belong to the caller (no process-wide pool, no atexit):
started only when a batch needs sympy, shared by the batches of one `with`, gone when it ends."""

from __future__ import annotations

from evalkit.scoring import ScoreItem, ScoringPool, check, score_many

CHEAP = [ScoreItem("16", r"\boxed{016}", "integer"), ScoreItem("B", r"Answer: B", "choice")]
SYMBOLIC = [
    ScoreItem(r"x^2+2x+1", r"\boxed{(x+1)^2}", "math"),
    ScoreItem(r"\frac{1}{2}", r"\boxed{0.5}", "math"),
]


def test_one_pool_serves_every_batch_of_its_owner_and_is_closed_with_it():
    with ScoringPool(workers=1) as pool:
        assert score_many(CHEAP, pool=pool) == [check(i.gold, i.response, i.answer_type) for i in CHEAP]
        assert pool.running == 0  # cheap answers start no process
        first = score_many(SYMBOLIC, pool=pool)
        workers = list(pool._pool.workers)
        assert pool.running == 1
        second = score_many(SYMBOLIC[::-1], pool=pool)
        assert pool._pool.workers == workers  # the same process served the second batch
    assert first == second[::-1] == [check(i.gold, i.response, i.answer_type) for i in SYMBOLIC]
    assert [v.correct for v in first] == [True, True]
    assert pool.running == 0 and all(w.process.exitcode is not None for w in workers)


def test_score_many_without_a_pool_leaves_no_worker_behind(monkeypatch):
    made: list[ScoringPool] = []
    original_init = ScoringPool.__init__

    def remember(self, workers=None):
        original_init(self, workers)
        made.append(self)

    monkeypatch.setattr(ScoringPool, "__init__", remember)
    verdicts = score_many(SYMBOLIC, workers=1)
    assert [v.correct for v in verdicts] == [True, True]
    assert len(made) == 1 and made[0].running == 0
