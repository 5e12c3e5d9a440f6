"""String normalisation of answers: canonical keys for memoising/voting and the cheap exact fast paths.

Everything here is pure string/int/Fraction work that always finishes quickly, so it may run in the
parent process; anything needing sympy goes to the verify workers (verify.py).
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

_UNIT_WORDS = (
    "degrees|degree|deg|cm|mm|km|m|meters|metres|meter|metre|inches|inch|in|feet|foot|ft|yards|yard|yd|"
    "units|unit|sq|square|cubic|dollars|dollar|cents|cent|euros|euro|hours|hour|hrs|minutes|minute|min|"
    "seconds|second|sec|days|day|weeks|week|mph|miles|mile|mi|pounds|lb|lbs|kg|g|grams|liters|litres|ml|l|"
    "years|year|ways|people|students|points|times|grade|grades|th"
)
_TEXT_UNIT = re.compile(
    rf"\\(?:text|mbox|mathrm|textnormal)\s*\{{\s*(?:(?:square|sq|cubic)\s+)?(?:{_UNIT_WORDS})"
    rf"(?:\^?\{{?[23]\}}?)?\s*\}}(\^[23]|\^\{{[23]\}})?"
)
# Any short text after a value at the end of an answer is its unit: `12 \text{ square feet}`, `3\mathrm{ km}`.
_TRAILING_TEXT = re.compile(
    r"(?<=[\d}).])\s*\\(?:text|mbox|mathrm|textnormal|textrm)\s*\{\s*[a-zA-Z][a-zA-Z /]{1,25}\}"
    r"(?:\s*\^\s*\{?[23]\}?)?\s*$"
)
_BARE_UNIT = re.compile(
    rf"(?<=[\d}}])\s+(?:(?:square|sq|cubic)\s+)?(?:{_UNIT_WORDS})\b(?:\^\{{?[23]\}}?)?\.?$"
)
_PERCENT_WORD = re.compile(r"(?<=[\d}])\s?(?:\\text\{\s?)?(?:percent|pct)\b\}?")
# A unit written against its number: 1,000.99m², 12cm, 3km
_GLUED_UNIT = re.compile(r"(?<=\d)(?:(?:m|cm|mm|km|ft|in)\^[23]|cm|mm|km|kg|ft|mph|ml)$")
_CURRENCY = re.compile(r"€|£|¥|\\euro|\\texteuro|\\pounds|\\yen|\b(?:USD|EUR|GBP)\b")
# 12th, 12^{th}, 12^{\mathrm{th}}, 21^\text{st}: the number
_ORDINAL = re.compile(
    r"(?<=\d)\s?(?:\^\s?\{?\s?(?:\\(?:mathrm|text|textrm|rm)\s?\{)?\s?(?:st|nd|rd|th)\s?\}?\s?\}?|(?:st|nd|rd|th)\b)"
)
# `2 \text{ and } 3`, `2 \quad 3`, `x=2 \text{ or } x=3`: a list of answers
_LIST_WORD = re.compile(
    r"\\(?:text|mbox|mathrm|textrm)\s*\{\s*,?\s*(?:and|or|,)\s*\}|\\q?quad|(?<=[\d}])\s+(?:and|or)\s+(?=[-\d\\(a-zA-Z])"
)
_THOUSANDS = re.compile(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?|-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?")
_COMMA_DECIMAL = re.compile(r"-?\d+,\d+")
_POINT_DECIMAL = re.compile(r"-?\d*\.\d+")
_SIMPLE_LHS = re.compile(r"^\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?[\w]+\}?)?(?:\([a-z]\))?\s*$")
_ONES_AND_TEENS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
)
NUMBER_WORDS: dict[str, int] = {w: i for i, w in enumerate(_ONES_AND_TEENS.split())} | {
    w: 10 * i for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), start=3)
}
_NUMBER_WORD = re.compile(r"(?:\\(?:text|mathrm|textrm|mbox)\s*\{)?\s*([a-zA-Z]+)(?:[- ]([a-zA-Z]+))?\s*\}?")


def _unwrap_text(s: str) -> str:
    previous = None
    while previous != s:
        previous = s
        s = re.sub(
            r"\\(?:text|textbf|mathrm|mathbf|textrm|mbox|textnormal|operatorname)\s*\{([^{}]*)\}", r"\1", s
        )
    return s


def _number_word(s: str) -> str:
    """`five`, `\\text{twenty-one}`: the number's digits; anything else unchanged."""
    m = _NUMBER_WORD.fullmatch(s)
    if not m:
        return s
    first, second = m.group(1).lower(), (m.group(2) or "").lower()
    if first not in NUMBER_WORDS or (second and second not in NUMBER_WORDS):
        return s
    value = NUMBER_WORDS[first] + (NUMBER_WORDS[second] if second else 0)
    if second and not (NUMBER_WORDS[first] >= 20 and 0 < NUMBER_WORDS[second] < 10):
        return s
    return str(value)


def _list_glue(s: str) -> str:
    """Words and spaces between listed answers become commas: `2 \\text{ and } 3` -> `2, 3`."""
    s = _LIST_WORD.sub(",", s)
    s = re.sub(r",(?:\s*,)+", ",", s)
    return s.strip().strip(",").strip()


@lru_cache(maxsize=1 << 16)  # called for gold and answer by several checks
def clean(answer: str) -> str:
    """LaTeX spelling variants that never change meaning, removed before any comparison."""
    s = answer.strip()
    s = re.sub(r"\s?\{\s?,\s?\}\s?|,\s?\\!\s?", ",", s)  # 10{,}000, 14 {, }916, 11,\! 111
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\displaystyle", "")
    s = (
        s.replace("\\left", "")
        .replace("\\right", "")
        .replace("\\!", "")
        .replace("\\,", "")
        .replace("\\;", "")
    )
    s = re.sub(r"\\+$", "", s.strip())  # a trailing backslash (`5\`) left from a line break
    s = re.sub(r"(?<!\\)\\ ", " ", s)  # a LaTeX space `\ `, not the row break `\\` before a space
    s = s.replace("\\$", "").replace("$", "").replace("\\dots", "\\ldots")  # `$` left: math mode
    s = s.replace("²", "^2").replace("³", "^3")
    s = _PERCENT_WORD.sub("\\%", s)
    s = _CURRENCY.sub("", s)
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s)  # 336^\circ, 336^{\circ}
    s = re.sub(r"\\(?:text|mbox)\{\s*°?\s*\}", "", s).replace("°", "")
    s = _ORDINAL.sub("", s)
    s = _list_glue(s)
    s = _TEXT_UNIT.sub("", s)
    s = _TRAILING_TEXT.sub("", s)
    s = _BARE_UNIT.sub("", s)
    s = _GLUED_UNIT.sub("", s)
    s = re.sub(r"(?<![\\a-zA-Z])pi(?![a-zA-Z])", r"\\pi", s)  # plain-text pi/2
    s = s.strip().strip("$").strip()
    s = re.sub(r"\.$", "", s)
    s = _number_word(s.strip())
    if _THOUSANDS.fullmatch(s):  # 1,000 / 1 000 / 1,000.99 (a decimal comma, `3,5`, is left alone)
        s = s.replace(",", "").replace(" ", "")
    return s.strip()


def top_level_parts(s: str) -> list[str]:
    """`s` split at commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def _strip_one(answer: str) -> str | None:
    if answer.count("=") == 1 and "\\le" not in answer and "\\ge" not in answer:
        lhs, rhs = answer.split("=")
        if _SIMPLE_LHS.match(lhs) and rhs.strip():
            return rhs.strip()
    return None


def strip_simple_lhs(answer: str) -> str:
    """`x = 3` -> `3`, `f(x) = 2x` -> `2x`, `x=2, x=3` -> `2, 3`; an equation whose left side is not a
    name stays whole."""
    single = _strip_one(answer)
    if single is not None and "," not in single:
        return single
    parts = top_level_parts(answer) if answer.count("=") > 1 else []
    values = [_strip_one(p) for p in parts]
    if len(parts) > 1 and all(v is not None for v in values):
        return ", ".join(v for v in values if v is not None)
    return single if single is not None else answer


@lru_cache(maxsize=1 << 16)  # the same few answers recur across a problem's samples
def canonical_key(answer: str) -> str:
    """A string key: equal keys mean equal answers (used for voting and the exact fast path)."""
    s = strip_simple_lhs(clean(answer))
    s = _unwrap_text(s)
    s = s.replace("\\%", "").replace("%", "")
    if _THOUSANDS.fullmatch(s.strip()):  # `x = 1,000` (not `32, 349`, a list)
        s = s.replace(",", "").replace(" ", "")
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"^\((\w)\)$", r"\1", s)  # (C) -> C
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    number = as_number(s)
    if number is not None:
        return str(number)
    return s.lower() if re.fullmatch(r"[a-zA-Z ]+", s) else s


_INT = re.compile(r"[+-]?\d+")
_DEC = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)")
_FRAC = re.compile(r"([+-]?)\\frac\{([+-]?\d+)\}\{([+-]?\d+)\}")
_SLASH = re.compile(r"([+-]?\d+)/(\d+)")
_REPEATING = re.compile(r"([+-]?)(\d*)\.(\d*)\\overline\{(\d+)\}")


def _repeating_decimal(m: re.Match) -> Fraction:
    r"""0.1\overline{6} = 1/6: sympy cannot read the overline, but MATH golds use it."""
    whole, fixed, repeat = m.group(2) or "0", m.group(3), m.group(4)
    value = Fraction(int(whole)) + Fraction(int(fixed or "0"), 10 ** len(fixed))
    value += Fraction(int(repeat), 10 ** len(fixed) * (10 ** len(repeat) - 1))
    return -value if m.group(1) == "-" else value


def as_number(s: str) -> Fraction | None:
    """Exact value of a plain integer, decimal or integer fraction; None for anything else."""
    s = s.strip()
    try:
        if _INT.fullmatch(s) or _DEC.fullmatch(s):
            return Fraction(s)
        m = _FRAC.fullmatch(s)
        if m and int(m.group(3)) != 0:
            value = Fraction(int(m.group(2)), int(m.group(3)))
            return -value if m.group(1) == "-" else value
        m = _REPEATING.fullmatch(s)
        if m:
            return _repeating_decimal(m)
        m = _SLASH.fullmatch(s)
        if m and int(m.group(2)) != 0:
            return Fraction(int(m.group(1)), int(m.group(2)))
    except (ValueError, ZeroDivisionError):  # ints over Python's 4300-digit limit: not "plain"
        return None
    return None


def as_integer(answer: str) -> int | None:
    """An integer answer in any of its spellings (`016`, `\\text{13}`, `336^\\circ`, `1{,}000`, `x=5`)."""
    s = canonical_key(answer)
    s = re.sub(r"^\{(.*)\}$", r"\1", s)
    number = as_number(s)
    if number is not None and number.denominator == 1:
        return int(number)
    return None


def decimal_comma_value(gold: str, pred: str) -> tuple[Fraction, Fraction] | None:
    """`1000,99` against `1000.99`, `0,111` against `0.111`: one side a decimal comma (not a thousands
    group, which `clean` already read), the other a decimal point. Both values; None otherwise."""
    if "," not in gold and "," not in pred:
        return None
    g, p = clean(gold), clean(pred)
    if _COMMA_DECIMAL.fullmatch(p) and _POINT_DECIMAL.fullmatch(g):
        return Fraction(g), Fraction(p.replace(",", "."))
    if _COMMA_DECIMAL.fullmatch(g) and _POINT_DECIMAL.fullmatch(p):
        return Fraction(g.replace(",", ".")), Fraction(p)
    return None
