"""Answers stated in words: a final "answer is ..." / "Final Answer: ..." / "**Answer:**" phrase and the
value it states, or an answer region that is one short expression (EVAL_PROTOCOL.md). Pure string work.

Every pattern here is bounded (fixed-width runs like `\\s{0,3}`, no nested quantifiers), and the text
after a phrase is read at most `_TAIL` characters far, so a 30K-character completion stays one pass.
"""

from __future__ import annotations

import re

from evalkit.scoring.normalize import NUMBER_WORDS

_TAIL = 400  # characters read after a phrase
_SHORT = 60  # the longest answer region taken whole as "one short expression"

# "answer is", "final answer:", "answer to this problem is", "**Answer:**", "**Final Answer**" + line break.
ANSWER_PHRASE = re.compile(
    r"(?:\bfinal\s{1,3}answer|\banswer(?:\s{1,3}to\s{1,3}(?:this|the)\s{1,3}(?:problem|question))?)"
    r"(?:\s{0,3}\*{0,2}\s{0,3}(?:is\b|:|=)|\*{0,2}\s{0,3}\*{0,2}:)"
    r"|\bfinal\s{1,3}answer\*{0,2}[ \t]{0,3}(?=\n)|\*\*answer\*\*[ \t]{0,3}(?=\n)|#{1,4}[ \t]{0,2}answer[ \t]{0,3}(?=\n)"
    r"|\banswer[ \t]{0,3}(?=\$|\\\[|\\\()",  # "Answer $9$", "Answer \\[ 9 \\]"
    re.IGNORECASE,
)
# Text after a stated answer that takes it back ("the answer is 5. Wait, no - it's 7"). A bare "wait" is
# not one: reasoning models write "Wait, let me double-check ... yes" after their final answer.
_CORRECTION = re.compile(
    r"\b(?:actually|oops|mistake|mistaken|wrong|incorrect|correction|erratum|scratch that|"
    r"on second thought|not quite|not (?:right|correct)|recheck|re-check|reconsider|redo|let me re)|"
    r"\bno\s{0,2}[,.—–-]|\bwait,?\s{0,2}no\b|\bhowever\b[^.\n]{0,80}\d",
    re.IGNORECASE,
)
_MATH_SPANS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
_PROSE_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}(?![a-zA-Z])")
# Lower-case words that may stand in an expression: functions, units, list words, number words.
_EXPRESSION_WORDS = (
    frozenset(
        (
            "sin cos tan cot sec csc log ln exp lim max min gcd lcm mod pi inf infty sqrt arcsin arccos "
            "arctan and or cm mm km m in ft yd mi kg lb oz ml hr mph deg degrees degree inches inch feet "
            "foot meters meter metres units unit square sq cubic dollars dollar cents cent hours hour "
            "minutes minute seconds second days day weeks years year ways people students points grade "
            "grams pounds miles hundred percent pct st nd rd th "
        ).split()
    )
    | NUMBER_WORDS.keys()
)
# A copula inside a stated sentence: "The largest $n$ is 34" -> the value after it.
_COPULA = re.compile(r"\s(?:is|are|was|equals|=|be)\s", re.IGNORECASE)
# Where a stated value ends and its explanation begins: "5, since ...", "$5$ because ...", "5 (the sum)".
_EXPLAINED = re.compile(
    r"(?:,\s(?![-+\d$\\(\[]|or\b|and\b)|\s(?:because|since|as|which|where)\s|\s\()", re.IGNORECASE
)  # a comma before another value is a list ("3, 4, or 5"), not an explanation
_STOPWORDS = frozenset("is so we it of to be an at by if on as no do my me us".split())


# A number and the thing it counts, one or two plain words: "12 apples", "5 red balls"; never a comparison.
_COUNTED = re.compile(r"(-?\d[\d,]{0,15}(?:\.\d{1,10})?)\s{1,2}([a-zA-Z]{1,20}(?:\s[a-zA-Z]{1,20})?)")
_COMPARATIVES = frozenset(
    ["more", "less", "fewer", "greater", "larger", "smaller", "higher", "lower", "than", "times", "or", "and"]
)
_FILLER = re.compile(
    r"(?:(?:therefore|thus|hence|simply|just|clearly|exactly|indeed|then|approximately|about),?[ \t]{1,3}){1,2}",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![\w.,])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w,]|\.\d)")


def _strip_decoration(s: str) -> str:
    previous = None
    while previous != s:
        previous = s
        s = s.strip().strip("*").strip()
        s = re.sub(r"^(?:\\textbf|\\mathbf)\{([^{}]*)\}$", r"\1", s)
        if s.endswith((".", ",", ";", ":", "!")):
            s = s[:-1]
    return s


def _math_span(text: str) -> tuple[str, int] | None:
    """`text` starting with one math span: (its content, the index after it)."""
    for left, right in _MATH_SPANS:
        if text.startswith(left):
            close = text.find(right, len(left))
            while close > 0 and right == "$" and text[close - 1] == "\\":  # `\$` is a dollar sign
                close = text.find(right, close + 1)
            if right in ("$", "\\)") and "\n" in text[len(left) : max(close, 0)]:
                return None  # inline math does not run across lines; display math may
            if close > len(left):
                return text[len(left) : close].strip(), close + len(right)
            return None
    return None


def _only_units(rest: str) -> bool:
    """Nothing, or at most three unit-like words ("cm", "square units") after a value."""
    words = rest.split()
    return len(words) <= 3 and all(w.strip("^23{}²³.").lower() in _EXPRESSION_WORDS for w in words)


def is_expression(s: str, limit: int = _SHORT) -> bool:
    """A math expression, not prose: short, one line, its words only names, functions, units, number words."""
    s = s.strip()
    if not s or len(s) > limit or "\n" in s:
        return False
    bare = re.sub(r"\\(?:text|mathrm|textrm|mbox|textbf|mathbf)\s*\{([^{}]*)\}", r" \1 ", s)
    bare = re.sub(r"\\[a-zA-Z]+", " ", bare)
    for word in _PROSE_WORD.findall(bare):
        lower = word.lower()
        if lower in _STOPWORDS or (len(word) > 2 and lower not in _EXPRESSION_WORDS):
            return False
    if re.search(r"[?!]|\.\s", s):  # a sentence
        return False
    return bool(re.search(r"[0-9a-zA-Z\\]", s))


def _one_sentence(text: str) -> tuple[str, int]:
    """The sentence `text` starts with (up to a full stop that is not a decimal point, or a line end)."""
    m = re.search(r"\.(?=\s|$)|\n", text)
    end = m.start() if m else len(text)
    return text[:end], end


def _value_of(text: str, allow_copula: bool, one_number: bool = False) -> tuple[str, int] | None:
    """The value a phrase states at the start of `text`: (value, index after it) or None (prose).
    `allow_copula`: after a heading ("Final Answer: The largest $n$ is 34") the sentence restates the
    question and the value follows its last "is"; after "the answer is" the value comes first.
    `one_number`: a sentence without "is" stating a single number states that number (only after
    "Final Answer:" or inside an `<answer>` tag; "Answer:" often starts a whole solution)."""
    lead = len(text) - len(text.lstrip(" \t*:,"))
    filler = _FILLER.match(text, lead)  # "the answer is therefore 5"
    lead = filler.end() if filler else lead
    text_l = text[lead:]
    if text_l.startswith("\n"):  # across a line break (at most one blank line)
        stripped = text_l.lstrip("\n \t*")
        if len(text_l) - len(stripped) > 8:
            return None
        lead += len(text_l) - len(stripped)
        text_l = stripped
    if text_l.startswith("$") and "$" not in text_l[1:].split("\n")[0]:
        text_l, lead = text_l[1:], lead + 1  # "The answer is $5." : a dollar sign, not math
    span = _math_span(text_l)
    if span is None and text_l.startswith(("$", "\\(", "\\[")):
        return None  # a math span that never closes (or runs across lines inline)
    if span is not None:
        content, after = span
        rest, rest_end = _one_sentence(text_l[after:])
        if content and (_only_units(_strip_decoration(rest)) or _EXPLAINED.match(rest)):
            return content, lead + after + rest_end
        return None
    sentence, end = _one_sentence(text_l)
    candidate = _strip_decoration(sentence)
    if is_expression(candidate):
        return candidate, lead + end
    cut = _EXPLAINED.search(candidate)
    if cut and is_expression(_strip_decoration(candidate[: cut.start()]), 40):
        return _strip_decoration(candidate[: cut.start()]), lead + end
    counted = _COUNTED.fullmatch(candidate.replace("**", ""))  # "12 apples", "**8** red balls"
    if counted and not _COMPARATIVES.intersection(w.lower() for w in counted.group(2).split()):
        return counted.group(1), lead + end
    if allow_copula:
        copulas = list(_COPULA.finditer(sentence))
        if copulas:
            last = copulas[-1]
            inner = _value_of(sentence[last.end() :] + text_l[end:], allow_copula=False)
            if inner is not None:
                return inner[0], lead + last.end() + inner[1]
        elif one_number:  # "Final Answer: Jane started growing Sphere 3 hours ago": its one number
            numbers = _NUMBER.findall(sentence)
            if len(numbers) == 1 and "$" not in sentence.replace(f"${numbers[0]}$", ""):
                return numbers[0], lead + end
    return None


# A base model that has answered often runs on into a made-up next problem: that text is not a correction.
_NEXT_PROBLEM = re.compile(
    r"\n\s{0,4}(?:#{1,4}\s{0,2})?(?:Question|Problem|Q|Exercise)\s{0,2}\d{0,4}\s{0,2}[:.]"
)
_CORRECTION_WINDOW = 300  # characters after the stated answer in which a take-back counts


def corrected(after: str) -> bool:
    """The text right after a stated answer takes it back ("Wait, no ..."); a next problem ends it."""
    after = after[:_CORRECTION_WINDOW]
    nxt = _NEXT_PROBLEM.search(after)
    return bool(_CORRECTION.search(after[: nxt.start()] if nxt else after))


# An explicit take-back, for the final box inside the thinking: after it a reasoning model usually goes
# on verifying ("Actually, let me verify once more ... yes", "Let me recheck: 2+3 = 5"), which the source
# graders, plain math-verify and the official judgement all ignore; only a plain "that was wrong" voids it.
_TAKEN_BACK = re.compile(
    r"\bwait,?\s{0,2}no\b|\bno,\s{0,2}(?:wait|that|this|it)\b|\boops\b|\bscratch that\b|"
    r"\b(?:that|this|it)(?:'s|\s{1,2}is|\s{1,2}was)\s{1,2}(?:wrong|incorrect|not (?:right|correct))\b|"
    r"\bI\s{1,2}made\s{1,2}an?\s{1,2}(?:mistake|error)\b|\bcorrection\s{0,2}:",
    re.IGNORECASE,
)


def taken_back(after: str) -> bool:
    """The text after the thinking's final box says plainly that it was wrong."""
    return bool(_TAKEN_BACK.search(after))


def phrase_answer(region: str) -> str | None:
    """The value stated by the final answer phrase; None if it states none or is taken back after."""
    matches = list(ANSWER_PHRASE.finditer(region))
    if not matches:
        return None
    m = matches[-1]
    tail = region[m.end() : m.end() + _TAIL]
    heading = not re.search(r"(?:is|=)$", m.group(0), re.IGNORECASE)
    found = _value_of(tail, allow_copula=heading, one_number=heading and "final" in m.group(0).lower())
    if found is None:
        return None
    value, end = found
    if corrected(region[m.end() + end :]):
        return None
    return value.strip() or None


def short_expression(region: str) -> str | None:
    """The answer region itself when it is one short expression ("-5", "$9$", "\\[ 9 \\]", "1,000.99"):
    a number or LaTeX; a lone word ("OK") or letter only inside math delimiters (`$E$`)."""
    if len(region) > 4 * _SHORT and len(region.strip()) > 4 * _SHORT:
        return None
    s = _strip_decoration(region)
    span = _math_span(s)
    rest = _strip_decoration(s[span[1] :]) if span is not None else ""
    in_math = span is not None and (not rest or rest in ("%", "\\%") or _only_units(rest))
    if in_math and span is not None:
        s = f"{span[0]} {rest}".strip()
    s = _strip_decoration(s)
    if "$" in s.replace("\\$", "") or not is_expression(s):
        return None
    return s if in_math or re.search(r"[\d\\]", s) else None


def stated_value(text: str) -> str | None:
    """The value a sentence states when it is the answer itself (an `<answer>` tag's content, what
    follows a "Final Answer:" heading): "The value of $k$ is $3$." -> `3`."""
    found = _value_of(text[:_TAIL], allow_copula=True, one_number=True)
    return found[0] if found else None
