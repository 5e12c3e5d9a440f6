"""redact(): strings that quote a private prompt are replaced by their hash; everything else is kept."""

from __future__ import annotations

import hashlib

import pytest

from evalkit.core.privacy import MARKER, PromptText, has_long_strings, redact

PROMPT = PromptText(["Answer the question. Which gas is released when zinc reacts with acid?\nA) hydrogen"])
QUOTE = "Which gas is released when zinc reacts"  # 38 characters of the prompt


def marker(text: str) -> str:
    return MARKER.format(hashlib.sha256(text.encode()).hexdigest())


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"seed": 3, "tokens": 1.5, "ok": True, "none": None}, {"seed": 3, "tokens": 1.5, "ok": True, "none": None}),
        ({"id": "cmpl-1", "hash": "ab" * 32}, {"id": "cmpl-1", "hash": "ab" * 32}),  # long, but no quote
        ({"prompt": QUOTE}, {"prompt": marker(QUOTE)}),
        ({"log": f"request said: {QUOTE}!"}, {"log": marker(f"request said: {QUOTE}!")}),
        ({"request": {"messages": [{"role": "user", "content": QUOTE}]}},
         {"request": {"messages": [{"role": "user", "content": marker(QUOTE)}]}}),
        ({"pair": (QUOTE, 1)}, {"pair": [marker(QUOTE), 1]}),
        ({QUOTE: 1}, {marker(QUOTE): 1}),  # a key can quote too
        ({"short": "zinc reacts with"}, {"short": "zinc reacts with"}),  # 16 shared characters: a phrase
        ({"answer": "released when zinc reacts wit"}, {"answer": marker("released when zinc reacts wit")}),
    ],
    ids=["numbers", "no quote", "quote", "inside a longer string", "nested", "tuple", "key", "short", "24 chars"],
)  # fmt: skip
def test_redact(extra, expected):
    assert redact(extra, PROMPT) == expected


def test_has_long_strings_finds_nested_ones():
    assert not has_long_strings({"seed": 1, "id": "cmpl-1", "list": [1, "x"]})
    assert has_long_strings({"a": [{"b": "x" * 24}]}) and has_long_strings({"y" * 30: 1})
