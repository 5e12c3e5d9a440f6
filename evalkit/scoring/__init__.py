"""Answer checking: extraction, normalisation, symbolic verification under hard timeouts.

check(gold, response, answer_type, options=) -> Verdict one completion, in this process
score_many([ScoreItem, ...], pool=, timeout=)           a whole run, worker processes, hard timeouts
score_both(items, pool=, options=)                      ours and the official judgement, in one batch
ScoringPool(workers)                                    those processes, owned by the caller (a `with`)
"""

from evalkit.scoring.judge import CHECKER_VERSION, Verdict, check
from evalkit.scoring.options import CheckerOptions
from evalkit.scoring.pool import ScoreItem, ScoringPool, score_both, score_many

__all__ = [
    "CHECKER_VERSION",
    "CheckerOptions",
    "ScoreItem",
    "ScoringPool",
    "Verdict",
    "check",
    "score_both",
    "score_many",
]
