"""Checker 2 (issue 14): what the extraction fallbacks take and refuse, normalisation details, and the
self-assessment table in model phrasings (tests/evalkit/checker_selfcheck_cases.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evalkit.scoring import CHECKER_VERSION, check
from evalkit.scoring.boxes import find_boxes
from evalkit.scoring.extract import answer_region, extract
from evalkit.scoring.normalize import canonical_key, clean
from evalkit.scoring.phrases import is_expression, phrase_answer, short_expression, stated_value
from tests.evalkit.checker_selfcheck_cases import SELFCHECK


def test_checker_version_is_2():
    assert CHECKER_VERSION == "2"


def test_selfcheck_agreement_and_false_accepts():
    assert len(SELFCHECK) >= 150 and len(set(SELFCHECK)) == len(SELFCHECK)
    verdicts = [(check(g, r, t).correct, label) for g, r, t, label in SELFCHECK]
    agree = sum(got == label for got, label in verdicts)
    false_accepts = sum(got and not label for got, label in verdicts)
    print(f"self-check: {agree}/{len(SELFCHECK)} agree, {false_accepts} false accepts")
    assert agree / len(SELFCHECK) >= 0.97
    assert false_accepts <= 2


@pytest.mark.parametrize(
    "region,value",
    [
        ("Final Answer: The final answer is $10,455$. I hope it is correct.", "10,455"),
        ("Final Answer: The largest $n$ is 34.", "34"),
        ("The answer is: $\\frac{1}{2}$", "\\frac{1}{2}"),
        ("the final answer is\n$$ 9 $$", "9"),
        ("**Answer:** $x = 3$.", "x = 3"),
        ("The answer is 12 inches.", "12 inches"),
        ("The answer is $5$, since 5 is prime.", "5"),
        ("The answer to this problem is 7.", "7"),
        ("Answer $ 9 $", "9"),
        ("The answer is a multiple of 3.", None),
        ("The answer is 5 when $x = 2$.", None),
        ("The answer is $6$ times the length.", None),
        ("The answer is 5. Wait, no - it's 7.", None),
        ("The answer is $5$. Oops, that was wrong.", None),
        ("no phrase here, just 5", None),
    ],
)
def test_phrase_answer_states_a_value_or_nothing(region, value):
    assert phrase_answer(region) == value


@pytest.mark.parametrize(
    "region,value",
    [
        ("-5", "-5"),
        (" $9$ ", "9"),
        ("\\[\n9\n\\]", "9"),
        (".4", ".4"),
        ("1,000.99", "1,000.99"),
        ("**8**", "8"),
    ],
)
def test_short_expression_regions(region, value):
    assert short_expression(region) == value


@pytest.mark.parametrize("region", ["OK", "x", "There are 8.", "so 5", "5 apples and 3 pears", "$5$ and $6$"])
def test_regions_that_are_not_one_expression(region):
    assert short_expression(region) is None


def test_is_expression_refuses_prose_and_long_text():
    assert is_expression("\\frac{\\sqrt{3}}{2}") and is_expression("12 \\text{ square units}")
    assert not is_expression("the sum is 5") and not is_expression("9" * 61)
    assert stated_value("The value of $k$ is $3$.") == "3"


def test_boxes_of_every_kind_in_order():
    text = "<boxed>1</boxed> boxed{2} \\fbox{3} <answer>4</answer> \\boxed{5}"
    assert [(b.content, b.kind) for b in find_boxes(text)] == [
        ("1", "box"),
        ("2", "box"),
        ("3", "box"),
        ("4", "tag"),
        ("5", "box"),
    ]
    # an answer tag holding a box gives way to the box; template placeholders are no box
    assert [b.content for b in find_boxes("<answer>so \\boxed{6}</answer>")] == ["6"]
    assert find_boxes("<answer> answer here </answer> \\boxed{your answer}") == []


def test_a_stray_second_think_close_ends_the_answer_not_the_thinking():
    response = "<think>maybe \\boxed{3}</think>\n\nSo \\boxed{5}\n</think>"
    assert answer_region(response).strip() == "So \\boxed{5}"
    assert extract(response, "math").source == "answer"
    # a second thinking, opened and closed again, is thinking: its box is from the thinking
    again = "<think>plan</think> draft <think>more \\boxed{3}</think>"
    assert (extract(again, "math").answer, extract(again, "math").source) == ("3", "thinking")
    # one </think> and nothing after it: the thinking's final box, marked as such
    assert extract("<think>\\boxed{5}</think>", "math") == extract("<think>\\boxed{5}</think>\n", "math")
    assert extract("<think>\\boxed{5}</think>", "math").source == "thinking"
    assert extract("<think>\\boxed{5}</think>", "math", strict_thinking=True).answer is None


@pytest.mark.parametrize(
    "answer,cleaned",
    [
        ("10{,}000", "10000"),
        ("1 000", "1000"),
        ("1,000.99", "1000.99"),
        ("3,5", "3,5"),  # a decimal comma (or a list) is not a thousands group
        ("0,111", "0,111"),
        ("€50", "50"),
        ("12^{\\mathrm{th}}", "12"),
        ("\\text{five}", "5"),
        ("2 \\text{ and } 3", "2,3"),
        ("5\\\\", "5"),
        ("16 m²", "16"),
        ("28 percent", "28\\%"),
    ],
)
def test_clean_spellings(answer, cleaned):
    assert clean(answer).replace(" ", "") == cleaned.replace(" ", "")


def test_canonical_keys_keep_lists_apart_from_thousands():
    assert canonical_key("32, 349") != canonical_key("32349")
    assert canonical_key("x = 1,000") == canonical_key("1000")


def test_extraction_needs_no_sympy():
    code = (
        "import sys; from evalkit.scoring.judge import prepare; "
        "prepare('5', '<think>a</think> The answer is $5$.', 'math'); "
        "prepare('B', 'the answer is for sure B', 'choice'); "
        "print('sympy' in sys.modules, 'math_verify' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
