"""Symbolic verification with math-verify; runs inside pool workers (it can hang: see pool.py).

math-verify's own SIGALRM timeouts are switched off (`parsing_timeout=None`, `timeout_seconds=None`):
they work only in a main thread, and the pool enforces a hard wall-clock limit per item instead.
"""

from __future__ import annotations

import logging
import re

from evalkit.scoring.normalize import as_number, canonical_key, clean, strip_simple_lhs, top_level_parts

# math-verify warns once that its timeout is off; that is deliberate here.
logging.getLogger("math_verify").setLevel(logging.ERROR)

_PLUS_MINUS = re.compile(r"\\pm|\\mp|±")


def _parse(latex: str):
    from math_verify import LatexExtractionConfig, parse

    return parse(f"${latex}$", extraction_config=[LatexExtractionConfig()], parsing_timeout=None)


def _mv_verify(gold_parsed, pred_parsed, **kwargs) -> bool:
    from math_verify import verify

    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None, **kwargs))


def _both_values(with_pm: str, listed: str) -> str:
    r"""`a \pm b` as the list `a+b, a-b`, when the other side is a list of two; else "" (a mismatch)."""
    if len(_PLUS_MINUS.findall(with_pm)) != 1 or len(top_level_parts(listed)) != 2:
        return ""
    plus = _PLUS_MINUS.sub(lambda m: "-" if m.group(0) == "\\mp" else "+", with_pm)
    minus = _PLUS_MINUS.sub(lambda m: "+" if m.group(0) == "\\mp" else "-", with_pm)
    return f"{strip_simple_lhs(plus)}, {strip_simple_lhs(minus)}"


def _has_equation(s: str) -> bool:
    return "=" in s and "\\le" not in s and "\\ge" not in s


def _named_value(pred: str) -> str:
    """`(x+y)^2 = 81` names the value asked for: keep 81. `a+3z=0` is an equation (right side 0): kept."""
    if pred.count("=") == 1:
        lhs, rhs = pred.split("=")
        number = as_number(canonical_key(rhs))
        # `-x = 5` says x = -5: a signed left side is not the quantity asked for
        if number is not None and number != 0 and lhs.strip() and not lhs.strip().startswith("-"):
            return rhs.strip()
    return pred


def verify_math(gold: str, pred: str) -> str:
    """Judge an extracted answer against gold: "match", "mismatch" or "parse_error" (unparseable).

    Gold goes first: math-verify is not symmetric.
    """
    gold_clean, pred_clean = strip_simple_lhs(clean(gold)), strip_simple_lhs(clean(pred))
    # `3 \pm 2\sqrt{2}` is two answers: it equals both listed (`3+2\sqrt{2}, 3-2\sqrt{2}`), never one.
    if bool(_PLUS_MINUS.search(gold_clean)) != bool(_PLUS_MINUS.search(pred_clean)):
        if _PLUS_MINUS.search(gold_clean):
            gold_clean = _both_values(gold_clean, pred_clean)
        else:
            pred_clean = _both_values(pred_clean, gold_clean)
        if not gold_clean or not pred_clean:
            return "mismatch"
    # One side of an equation is not the equation: `a+3z=0` is not the answer `0` (math-verify takes
    # the right-hand side of any equation); only a plain name on the left (`x = 3`) was stripped above.
    pred_clean = _named_value(pred_clean) if not _has_equation(gold) else pred_clean
    if _has_equation(gold_clean) != _has_equation(pred_clean):
        return "mismatch"
    gold_parsed = _parse(gold_clean)
    pred_parsed = _parse(pred_clean)
    if not gold_parsed or not pred_parsed:
        return "parse_error"
    if _mv_verify(gold_parsed, pred_parsed):
        return "match"
    # Percent written against a bare gold (`50\%` for `50`): math-verify reads it as 0.5.
    if "%" in pred_clean and "%" not in gold_clean:
        stripped = _parse(pred_clean.replace("\\%", "").replace("%", ""))
        if stripped and _mv_verify(gold_parsed, stripped):
            return "match"
    return "mismatch"


def _has_float(parsed) -> bool:
    from sympy import Basic, Float

    return any(isinstance(item, Basic) and item.atoms(Float) for item in parsed)


def verify_lighteval(gold: str, response: str) -> tuple[bool, str | None]:
    """lighteval 0.10 `math_pass_at_1` judgement (bug-compatible; see EVAL_PROTOCOL.md).

    Gold and the whole response are parsed with math-verify's expression + LaTeX configs (boxed first)
    and no string fallback; math-verify's right-hand-side acceptance of equations is kept; and, as the
    misplaced precision argument made any comparison involving a decimal fail, a decimal on either side
    is a mismatch.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    targets = [ExprExtractionConfig(), LatexExtractionConfig(boxed_match_priority=0)]
    gold_parsed = parse(
        f"${gold}$", [LatexExtractionConfig()], fallback_mode="no_fallback", parsing_timeout=None
    )
    pred_parsed = parse(response, targets, fallback_mode="no_fallback", parsing_timeout=None)
    extracted = str(pred_parsed[-1]) if pred_parsed else None
    if not gold_parsed or not pred_parsed:
        return False, extracted
    if _has_float(gold_parsed[:1]) or _has_float(pred_parsed[:1]):
        return False, extracted
    return _mv_verify(gold_parsed, pred_parsed), extracted
