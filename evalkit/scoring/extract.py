"""Answer extraction: the part of a completion the checker judges (EVAL_PROTOCOL.md).

Pure string work, no sympy: it runs in the parent process so only the short extracted answer (never the
30K-character completion) travels to the verify workers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_BOX_COMMANDS = ("\\boxed", "\\fbox")
# Between two boxes that together form one answer ("\boxed{2} and \boxed{3}"): only glue, no words.
# Empty boxes and template placeholders a model copies from a prompt ("\boxed{[answer]}") are no answer.
_PLACEHOLDER = re.compile(
    r"^\[?\s*(?:your\s+)?(?:final\s+)?(?:answer|ans|\.\.\.|\\ldots)\s*\]?$", re.IGNORECASE
)
_BOX_GLUE = re.compile(r"^(?:\s|\$|\\\)|\\\(|\\\]|\\\[|,|;|\\quad|\\qquad|\\,|and|or|&)*$")


@dataclass(frozen=True)
class Extraction:
    """`answer` is None when nothing was found; `reason` then says why ("no_answer"/"truncated_thinking").
    `source` says where the answer was found: "answer" (after the last `</think>`, or a completion
    without thinking tags) or "thinking" (inside the thinking, when nothing answerable follows it)."""

    answer: str | None
    reason: str | None = None
    source: str | None = None


def answer_region(response: str) -> str | None:
    """Text after the last `</think>`; None when the completion stopped inside its thinking."""
    if THINK_CLOSE in response:
        return response.rsplit(THINK_CLOSE, 1)[1]
    if THINK_OPEN in response:
        return None  # opened thinking, never closed it: cut off (or never answered)
    return response


def _match_brace(text: str, open_index: int) -> int | None:
    """Index of the `}` closing the `{` at open_index, skipping escaped braces; None if unbalanced."""
    depth = 0
    i = open_index
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def find_boxes(text: str) -> list[tuple[int, int, str]]:
    """All `\\boxed{...}` / `\\fbox{...}` / `\\boxed 5` as (start, end, content), in order."""
    boxes = []
    pattern = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
    pos = 0
    while True:
        m = pattern.search(text, pos)
        if not m:
            return boxes
        i = m.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            close = _match_brace(text, i)
            if close is None:  # unbalanced (cut off mid-box): not an answer
                pos = m.end()
                continue
            content = text[i + 1 : close].strip()
            if content and not _PLACEHOLDER.match(content):
                boxes.append((m.start(), close + 1, content))
            pos = close + 1
        elif i > m.end():  # `\boxed 5`: one token, up to whitespace or math delimiter
            token = re.match(r"[^\s$\\]+", text[i:])
            if token:
                end = i + token.end()
                boxes.append((m.start(), end, token.group(0).rstrip(".,;")))
                pos = end
            else:
                pos = m.end()
        else:
            pos = m.end()


def last_boxed(text: str) -> str | None:
    """The final box; boxes right before it joined only by glue ("\\boxed{2}, \\boxed{3}") are one answer."""
    boxes = find_boxes(text)
    if not boxes:
        return None
    group = [boxes[-1]]
    for prev in reversed(boxes[:-1]):
        if not _BOX_GLUE.match(text[prev[1] : group[0][0]]):
            break
        group.insert(0, prev)
    contents = []
    for _, _, content in group:
        if content and content not in contents:
            contents.append(content)
    return ", ".join(contents) if contents else None


# Ordered fallbacks for math/integer answers when there is no box.
_PHRASES = (
    re.compile(r"final answer is[:\s]*(.+)", re.IGNORECASE),
    re.compile(r"answer is[:\s]*(.+)", re.IGNORECASE),
    re.compile(r"answer\s*:\s*(.+)", re.IGNORECASE),
)


def _clean_phrase(tail: str) -> str | None:
    tail = tail.strip().split("\n")[0].replace("\\$", "")  # an escaped dollar is a unit, not math mode
    tail = re.split(r"(?<=[^\\\d])\.(?:\s|$)|\.\s|\.$", tail)[0]  # stop at the sentence end
    tail = tail.strip().strip("*").strip()
    for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if tail.startswith(left) and right in tail[len(left) :]:
            tail = tail[len(left) :].split(right)[0]
    tail = tail.strip().strip("$").strip().rstrip(".,;:").strip()
    return tail or None


def phrase_answer(text: str) -> str | None:
    for pattern in _PHRASES:
        matches = list(pattern.finditer(text))
        if matches:
            return _clean_phrase(matches[-1].group(1))
    return None


_LETTER = "A-J"
_BOX_LETTER = re.compile(rf"^\(?([{_LETTER}])\)?(?:$|[\s.:,)])", re.IGNORECASE)
_PHRASE_LETTER = re.compile(
    rf"(?:answer\s*(?:is|:)|correct (?:option|choice) is|final choice is)\s*[:\s]*\**\s*\$?\s*"
    rf"(?:\\boxed\{{)?(?:\\text(?:bf)?\{{)?\(?([{_LETTER}])\)?(?![a-zA-Z])",
    re.IGNORECASE,
)


def _strip_wrappers(content: str) -> str:
    """`\\text{(C)}` -> `(C)`; `\\textbf{C}` -> `C`; repeated so nesting unwraps too."""
    previous = None
    while previous != content:
        previous = content
        content = re.sub(r"\\(?:text|textbf|mathrm|mathbf|textrm|mbox)\s*\{([^{}]*)\}", r"\1", content)
        content = content.strip().strip("$").strip()
    return content


def box_letter(content: str) -> str | None:
    m = _BOX_LETTER.match(_strip_wrappers(content))
    return m.group(1).upper() if m else None


def choice_answer(text: str) -> str | None:
    """Letter in the final box, else the last "Answer: X"/"answer is (X)"; never a bare letter."""
    boxes = find_boxes(text)
    if boxes:
        letter = box_letter(boxes[-1][2])
        if letter:
            return letter
    for m in reversed(list(_PHRASE_LETTER.finditer(text))):
        letter = m.group(1)
        # A lowercase "a" after "answer is" is the English article, not option A.
        if letter.isupper() or m.group(0).rstrip().endswith(")"):
            return letter.upper()
    return None


def _answer_in(region: str, answer_type: str) -> str | None:
    if answer_type == "choice":
        return choice_answer(region)
    return last_boxed(region) or phrase_answer(region)


def _thinking_box(response: str, answer_type: str) -> str | None:
    """The final box inside the thinking (the text before the last `</think>`)."""
    thinking = response.rsplit(THINK_CLOSE, 1)[0]
    if answer_type == "choice":
        boxes = find_boxes(thinking)
        return box_letter(boxes[-1][2]) if boxes else None
    return last_boxed(thinking)


def extract(response: str, answer_type: str, *, strict_thinking: bool = False) -> Extraction:
    region = answer_region(response)
    if region is None:
        return Extraction(None, "truncated_thinking")
    answer = _answer_in(region, answer_type)
    if answer:
        return Extraction(answer, None, "answer")
    if not strict_thinking and THINK_CLOSE in response:
        answer = _thinking_box(response, answer_type)
        if answer:
            return Extraction(answer, None, "thinking")
    return Extraction(None, "no_answer")
