"""Answer extraction: the part of a completion the checker judges (EVAL_PROTOCOL.md).

Pure string work, no sympy: it runs in the parent process so only the short extracted answer (never the
30K-character completion) travels to the verify workers.

Math and integer answers, in order: the final box (`\\boxed{}`, `\\fbox{}`, `boxed{}`, `<boxed>`, or an
`<answer>` tag, whose content is read the same way); a final answer phrase and the value it states; an
answer region that is one short expression. Choice letters: see choice.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evalkit.scoring.boxes import find_boxes, glued_group, join_contents, last_boxed
from evalkit.scoring.choice import box_letter, choice_answer
from evalkit.scoring.phrases import (
    corrected,
    is_expression,
    phrase_answer,
    short_expression,
    stated_value,
    taken_back,
)

__all__ = ["Extraction", "answer_region", "extract", "find_boxes", "last_boxed"]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_TRAILING_CLOSE = re.compile(r"(?:\s*</think>)+\s*$")


@dataclass(frozen=True)
class Extraction:
    """`answer` is None when nothing was found; `reason` then says why ("no_answer"/"truncated_thinking").
    `source` says where the answer was found: "answer" (after the last `</think>`, or a completion
    without thinking tags) or "thinking" (inside the thinking, when nothing answerable follows it)."""

    answer: str | None
    reason: str | None = None
    source: str | None = None


def _split_thinking(response: str) -> tuple[str | None, str | None]:
    """(thinking, answer region). A stray second `</think>` closing the answer itself is dropped:
    `<think>..</think> .. \\boxed{5}</think>` answers after the first tag. (None, None): cut off inside
    the thinking; thinking None: a completion without thinking tags."""
    if THINK_CLOSE not in response:
        return (None, None) if THINK_OPEN in response else (None, response)
    body = response
    if response.count(THINK_CLOSE) > 1:
        body = _TRAILING_CLOSE.sub("", response)
        # not stray: nothing left before it, or it closes a thinking the model opened again
        if THINK_CLOSE not in body or THINK_OPEN in body.rsplit(THINK_CLOSE, 1)[1]:
            body = response
    thinking, region = body.rsplit(THINK_CLOSE, 1)
    return thinking, region


def answer_region(response: str) -> str | None:
    """Text after the last `</think>` (a stray trailing one aside); None when cut off inside thinking."""
    thinking, region = _split_thinking(response)
    return region


_TAG_LIMIT = 100  # an `<answer>` tag's content up to this long, an expression, is the answer itself
_NAME = re.compile(r"[A-Za-z][A-Za-z'-]{0,30}(?: [A-Za-z][A-Za-z'-]{0,30}){0,2}")  # `Evelyn`, `north east`


def _tag_answer(content: str) -> str | None:
    """An `<answer>` tag's content: a phrase or stated value inside it, else the content itself when it
    is an expression or a name (`Evelyn` is an answer here: the tag says so), never a sentence."""
    found = phrase_answer(content) or short_expression(content) or stated_value(content)
    if found:
        return found
    content = content.strip().strip("$").strip().rstrip(".").strip()
    if is_expression(content, _TAG_LIMIT) or _NAME.fullmatch(content):
        return content
    return None


def _math_answer(region: str) -> str | None:
    boxes = find_boxes(region)
    if boxes:
        group = glued_group(region, boxes)
        if group[-1].kind == "tag":  # text after `</answer>` should be nothing; a retraction voids it
            return None if corrected(region[group[-1].end :]) else _tag_answer(group[-1].content)
        return join_contents(group)
    return phrase_answer(region) or short_expression(region)


def _answer_in(region: str, answer_type: str) -> str | None:
    if answer_type == "choice":
        return choice_answer(region)
    return _math_answer(region)


def _thinking_box(thinking: str, answer_type: str) -> str | None:
    """The final box inside the thinking, unless the thinking goes on to say plainly it was wrong."""
    boxes = find_boxes(thinking)
    if not boxes or taken_back(thinking[boxes[-1].end :]):
        return None
    if answer_type == "choice":
        return box_letter(boxes[-1].content)
    group = glued_group(thinking, boxes)
    return _tag_answer(group[-1].content) if group[-1].kind == "tag" else join_contents(group)


def extract(response: str, answer_type: str, *, strict_thinking: bool = False) -> Extraction:
    thinking, region = _split_thinking(response)
    if region is None:
        return Extraction(None, "truncated_thinking")
    answer = _answer_in(region, answer_type)
    if answer:
        return Extraction(answer, None, "answer")
    if not strict_thinking and thinking is not None:
        answer = _thinking_box(thinking, answer_type)
        if answer:
            return Extraction(answer, None, "thinking")
    return Extraction(None, "no_answer")
