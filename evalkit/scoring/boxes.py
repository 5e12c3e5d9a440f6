"""Where a completion marks its answer: `\\boxed{..}`, `\\fbox{..}`, `boxed{..}` without its backslash,
`<boxed>..</boxed>` and `<answer>..</answer>` tags (EVAL_PROTOCOL.md). Pure string work.

Every scan here is linear (brace matching, `str.find`); no regex with nested quantifiers, so a 30K-character
completion costs one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Empty boxes and template placeholders a model copies from a prompt ("\boxed{[answer]}") are no answer.
_PLACEHOLDER = re.compile(
    r"^\[?\s*(?:your\s+)?(?:final\s+)?(?:answer|ans|\.\.\.|\\ldots)(?:\s+here)?\s*\]?$", re.IGNORECASE
)
# Between two boxes that together form one answer ("\boxed{2} and \boxed{3}"): only glue, no words.
_BOX_GLUE = re.compile(
    r"^(?:\s|\$|\\\)|\\\(|\\\]|\\\[|,|;|\\quad|\\qquad|\\,|and|or|&|\\text\{|\\mbox\{|\})*$"
)
# `\boxed` / `\fbox`, and `boxed{` written without its backslash (not inside a longer word).
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])|(?<![a-zA-Z\\])boxed(?=\s?\{)")
_TAGS = ("boxed", "answer")
# An `<answer>` tag left open at the very end (generation stopped on `</answer>`): this much text at most.
_OPEN_TAG_LIMIT = 300


@dataclass(frozen=True)
class Box:
    """One marked answer: where it is and what it holds. `kind` is "box" (a LaTeX box or `<boxed>`)
    or "tag" (`<answer>`, whose content may be a sentence or hold a box of its own)."""

    start: int
    end: int
    content: str
    kind: str = "box"


def is_placeholder(content: str) -> bool:
    return not content or bool(_PLACEHOLDER.match(content))


def _brace_pairs(text: str) -> dict[int, int]:
    """Index of each `{` -> index of the `}` closing it (escaped braces skipped), in one pass; an
    unclosed `{` is absent. One pass, so a completion full of unbalanced boxes stays linear."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


def _latex_boxes(text: str) -> list[Box]:
    boxes: list[Box] = []
    pairs: dict[int, int] | None = None
    pos = 0
    while True:
        m = _BOX_COMMAND.search(text, pos)
        if not m:
            return boxes
        i = m.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            pairs = _brace_pairs(text) if pairs is None else pairs
            close = pairs.get(i)
            if close is None:  # unbalanced (cut off mid-box): not an answer
                pos = m.end()
                continue
            content = text[i + 1 : close].strip()
            if not is_placeholder(content):
                boxes.append(Box(m.start(), close + 1, content))
            pos = close + 1
        elif i > m.end() and text[m.start()] == "\\":  # `\boxed 5`: one token, up to space or delimiter
            token = re.match(r"[^\s$\\]+", text[i:])
            if token:
                end = i + token.end()
                boxes.append(Box(m.start(), end, token.group(0).rstrip(".,;")))
                pos = end
            else:
                pos = m.end()
        else:
            pos = m.end()


def _tag_boxes(text: str) -> list[Box]:
    """`<boxed>X</boxed>` and `<answer>X</answer>`; an `<answer>` still open at the end counts when short."""
    found = []
    lower = text.lower()
    for name in _TAGS:
        opening, closing = f"<{name}>", f"</{name}>"
        pos = 0
        while True:
            start = lower.find(opening, pos)
            if start < 0:
                break
            body = start + len(opening)
            close = lower.find(closing, body)
            if close < 0:
                rest = text[body:].strip()
                short = name == "answer" and len(rest) <= _OPEN_TAG_LIMIT
                if short and opening not in lower[body:] and not is_placeholder(rest):
                    found.append(Box(start, len(text), rest, "tag"))
                break
            content = text[body:close].strip()
            if not is_placeholder(content):
                found.append(Box(start, close + len(closing), content, "box" if name == "boxed" else "tag"))
            pos = close + len(closing)
    return found


def find_boxes(text: str) -> list[Box]:
    """Every marked answer in order of position. An `<answer>` tag holding a box gives way to that box."""
    latex = _latex_boxes(text)
    tags = [
        tag
        for tag in _tag_boxes(text)
        if tag.kind == "box" or not any(tag.start <= b.start < tag.end for b in latex)
    ]
    return sorted(latex + tags, key=lambda b: b.start)


def glued_group(text: str, boxes: list[Box]) -> list[Box]:
    """The final box and the boxes right before it joined only by glue ("\\boxed{2}, \\boxed{3}")."""
    group = [boxes[-1]]
    if boxes[-1].kind == "tag":
        return group
    for prev in reversed(boxes[:-1]):
        if prev.kind == "tag" or not _BOX_GLUE.match(text[prev.end : group[0].start]):
            break
        group.insert(0, prev)
    return group


def join_contents(group: list[Box]) -> str | None:
    contents = []
    for box in group:
        if box.content and box.content not in contents:
            contents.append(box.content)
    return ", ".join(contents) if contents else None


def last_boxed(text: str) -> str | None:
    """The final box's content (glued boxes joined); `<answer>` tags count as boxes here."""
    boxes = find_boxes(text)
    return join_contents(glued_group(text, boxes)) if boxes else None
