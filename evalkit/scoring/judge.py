"""One answer's verdict: cheap checks in the caller's process, symbolic ones as a `VerifyJob`.

`prepare` decides everything that string/integer work can decide (extraction, choice letters, integer
answers, identical canonical forms); what is left is a small `VerifyJob` (gold + short extracted answer)
that `run_job` finishes with sympy, in a pool worker under a hard timeout (pool.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from evalkit.scoring.extract import extract
from evalkit.scoring.normalize import as_integer, as_number, canonical_key, decimal_comma_value
from evalkit.scoring.options import DEFAULT_OPTIONS, CheckerOptions

# Bump whenever a verdict can change (extraction, normalisation, verification); it enters the run_id.
CHECKER_VERSION = "2"

ANSWER_TYPES = ("integer", "math", "choice")
MODES = ("evalkit", "lighteval")


@dataclass(frozen=True)
class Verdict:
    correct: bool
    extracted: str | None
    # match | answer_in_thinking (a match found inside the thinking) | mismatch | no_answer |
    # truncated_thinking | timeout | parse_error
    reason: str
    source: str | None = None  # where `extracted` was found: "answer" | "thinking" | None (nothing found)


def with_source(verdict: Verdict, source: str | None) -> Verdict:
    """The verdict of an answer found at `source`: a match inside the thinking has its own reason."""
    reason = verdict.reason
    if source == "thinking" and reason == "match":
        reason = "answer_in_thinking"
    return replace(verdict, source=source, reason=reason)


@dataclass(frozen=True)
class VerifyJob:
    """The part of a check that needs sympy. `pred` is the extracted answer (lighteval: the response)."""

    gold: str
    pred: str
    answer_type: str
    mode: str
    extracted: str | None
    source: str | None = None  # of the extracted answer (see Verdict.source)


def _validate(answer_type: str, mode: str) -> None:
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"answer_type must be one of {ANSWER_TYPES}, got {answer_type!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _plain_numbers_differ(gold: str, pred: str) -> bool:
    """Both plain numbers that differ even after math-verify's 6-decimal rounding: a sure mismatch."""
    if "%" in gold + pred:  # 50\% may mean 0.5: leave percent to math-verify
        return False
    g, p = as_number(canonical_key(gold)), as_number(canonical_key(pred))
    return g is not None and p is not None and round(float(g), 6) != round(float(p), 6)


def prepare(
    gold: str,
    response: str,
    answer_type: str,
    mode: str = "evalkit",
    options: CheckerOptions = DEFAULT_OPTIONS,
) -> Verdict | VerifyJob:
    """The verdict, when string work decides it; else the `VerifyJob` that sympy must finish.
    `options` apply to evalkit's judgement; the official one (mode "lighteval") has none."""
    _validate(answer_type, mode)
    if mode == "lighteval":
        return VerifyJob(gold, response, answer_type, mode, None)
    found = extract(response, answer_type, strict_thinking=options.strict_thinking)
    if found.answer is None:
        return Verdict(False, None, found.reason or "no_answer")
    pred = found.answer
    decided = _decide(gold, pred, answer_type)
    if decided is not None:
        return with_source(decided, found.source)
    return VerifyJob(gold, pred, answer_type, mode, pred, found.source)


def _decide(gold: str, pred: str, answer_type: str) -> Verdict | None:
    """The verdicts string and integer work can give; None when sympy must decide."""
    if answer_type == "choice":
        same = pred.strip().upper() == gold.strip().strip("()").upper()
        return Verdict(same, pred, "match" if same else "mismatch")
    decimals = decimal_comma_value(gold, pred)
    if decimals is not None:
        same = decimals[0] == decimals[1]
        return Verdict(same, pred, "match" if same else "mismatch")
    if answer_type == "integer":
        gold_int, pred_int = as_integer(gold), as_integer(pred)
        if gold_int is not None and pred_int is not None:
            return Verdict(gold_int == pred_int, pred, "match" if gold_int == pred_int else "mismatch")
    if canonical_key(gold) == canonical_key(pred):
        return Verdict(True, pred, "match")
    if _plain_numbers_differ(gold, pred):
        return Verdict(False, pred, "mismatch")
    return None


def run_job(job: VerifyJob) -> Verdict:
    """Finish a check with sympy. Can take unbounded time: call it under a timeout (pool.py).
    The verdict has no source: jobs are shared by equal answers from different places (`with_source`)."""
    from evalkit.scoring.verify import verify_lighteval, verify_math

    try:
        if job.mode == "lighteval":
            correct, extracted = verify_lighteval(job.gold, job.pred)
            return Verdict(
                correct, extracted, "match" if correct else ("mismatch" if extracted else "no_answer")
            )
        reason = verify_math(job.gold, job.pred)
    except Exception:  # sympy raises anything on odd input; an unjudgeable answer is not correct
        return Verdict(False, job.extracted, "parse_error")
    return Verdict(reason == "match", job.extracted, reason)


def check(
    gold: str,
    response: str,
    answer_type: str,
    *,
    mode: str = "evalkit",
    options: CheckerOptions = DEFAULT_OPTIONS,
) -> Verdict:
    """Judge one completion in this process (no timeout; use `score_many` for whole runs)."""
    result = prepare(gold, response, answer_type, mode, options)
    return result if isinstance(result, Verdict) else with_source(run_job(result), result.source)
