"""Multiple-choice letters (GPQA): in the final box or tag, after an answer phrase, or a response that is
only the letter or starts with it; never a letter found in the middle of prose (EVAL_PROTOCOL.md).
"""

from __future__ import annotations

import re

from evalkit.scoring.boxes import find_boxes
from evalkit.scoring.phrases import corrected

_LETTER = "A-J"
_QUOTES = "\"'“”‘’`"
_BOX_LETTER = re.compile(rf"^[{_QUOTES}]?\(?([{_LETTER}])\)?[{_QUOTES}]?(?:$|[\s.:,)])", re.IGNORECASE)
# Words a model puts between "the answer is" and the letter ("for sure", "option", "clearly").
_FILLER = (
    r"(?:(?:for\s{1,2}sure|definitely|clearly|certainly|indeed|obviously|surely|likely|most\s{1,2}likely|"
    r"probably|therefore|thus|option|choice|letter)[\s,:]{1,3}){0,3}"
)
_PHRASE_LETTER = re.compile(
    rf"(?:answer\s{{0,3}}(?:is|:)|answer\s{{0,3}}\*\*\s{{0,3}}:?|correct\s{{1,3}}(?:option|choice)\s{{1,3}}is|"
    rf"final\s{{1,3}}choice\s{{1,3}}is)"
    rf"[\s:*]{{0,6}}{_FILLER}[\s:*]{{0,4}}\$?\s{{0,2}}(?:\\boxed\{{)?(?:\\text(?:bf)?\{{)?"
    rf"[{_QUOTES}]?\(?([{_LETTER}])\)?[{_QUOTES}]?(?![a-zA-Z])(?!\s{{0,2}}(?:or|and|/|,)\s{{0,2}}\(?(?-i:[{_LETTER}])\b)",
    re.IGNORECASE,
)
# A response that is only the letter or starts with it: "D", "(C)", "D. because ...", "**B**", '"C"'.
_LEADING_LETTER = re.compile(
    rf"^[\s*#]{{0,6}}(?:\(([{_LETTER}])\)|[{_QUOTES}]([{_LETTER}])[{_QUOTES}]|([{_LETTER}])(?=\s{{0,2}}$|[.:)]|\*\*(?![a-zA-Z])|\s{{0,2}}\n))"
)


def _strip_wrappers(content: str) -> str:
    """`\\text{(C)}` -> `(C)`; `\\textbf{C}` -> `C`; repeated so nesting unwraps too."""
    previous = None
    while previous != content:
        previous = content
        content = re.sub(r"\\(?:text|textbf|mathrm|mathbf|textrm|mbox)\s*\{([^{}]*)\}", r"\1", content)
        content = content.strip().strip("$*").strip()
    return content


def box_letter(content: str) -> str | None:
    m = _BOX_LETTER.match(_strip_wrappers(content))
    return m.group(1).upper() if m else None


def phrase_letter(text: str) -> str | None:
    """The last "Answer: X" / "the answer is (X)" not taken back after; the article "a" is not option A."""
    for m in reversed(list(_PHRASE_LETTER.finditer(text))):
        letter = m.group(1)
        # "Answer: b" is option B; "the answer is a consequence" is not option A
        after_colon = ":" in m.group(0) and re.match(r"\s*(?:$|[.)\n])", text[m.end() :])
        if letter.isupper() or after_colon or m.group(0).rstrip().endswith((")", *_QUOTES)):
            return None if corrected(text[m.end() :]) else letter.upper()
    return None


def leading_letter(text: str) -> str | None:
    m = _LEADING_LETTER.match(text)
    if not m:
        return None
    return next(g for g in m.groups() if g)


def choice_answer(text: str) -> str | None:
    """Letter in the final box or answer tag, else the last answer phrase, else a leading letter."""
    boxes = find_boxes(text)
    if boxes:
        last = boxes[-1]
        letter = box_letter(last.content)
        if letter is None and last.kind == "tag":
            letter = phrase_letter(last.content) or leading_letter(last.content)
        if letter:
            return letter
    return phrase_letter(text) or leading_letter(text)
