"""The official prompts render byte for byte as in EVAL_PROTOCOL.md; alternatives are selectable by name."""

from __future__ import annotations

import pytest

from evalkit.core.errors import EvalkitError
from evalkit.core.types import Problem
from tasks import TASK_NAMES, get_task
from tasks.gpqa_diamond import make_view

# (task, problem id, the exact user message). Expected strings are written out, not built with the code
# under test.
OFFICIAL_RENDERINGS = [
    (
        "aime24",
        "72",
        "Please reason step by step, and put your final answer within \\boxed{}. Find the largest possible "
        "real part of \\[(75+117i)z+\\frac{96+144i}{z}\\]where $z$ is a complex number with $|z|=4$.",
    ),
    (
        "aime25",
        "0",
        "Please reason step by step, and put your final answer within \\boxed{}. Find the sum of all integer "
        "bases $b>9$ for which $17_b$ is a divisor of $97_b.$",
    ),
    (
        "math500",
        "test/algebra/1255.json",
        "Please reason step by step, and put your final answer within \\boxed{}. Evaluate $\\log_264$.",
    ),
]


@pytest.mark.parametrize("name, problem_id, expected", OFFICIAL_RENDERINGS)
def test_official_math_prompt_byte_for_byte(name, problem_id, expected, data_dir):
    problem = {p.id: p for p in get_task(name).load(data_dir)}[problem_id]
    assert problem.messages == ({"role": "user", "content": expected},)


def test_official_prompt_arith_demo_byte_for_byte():
    problem = get_task("arith-demo").load()[3]
    assert problem.messages == (
        {
            "role": "user",
            "content": "Please reason step by step, and put your final answer within \\boxed{}. "
            "10 students share 70 pencils equally. How many pencils does each student get?",
        },
    )
    assert problem.gold == "7"


# GPQA examples must not appear in plain text in the repository, so the byte-for-byte check uses a
# made-up question; the real data is checked for the same layout below.
FAKE_GPQA = Problem(
    id="recFAKE",
    messages=(),
    gold="right",
    answer_type="choice",
    metadata={
        "question": "Which is it?",
        "options": ["right", "wrong 1", "wrong 2", "wrong 3"],
        "prompt_name": "official",
    },
)


def test_official_gpqa_prompt_byte_for_byte():
    task = get_task("gpqa_diamond")
    view = make_view(task, FAKE_GPQA, sample_index=0, seed=0)
    shown = ["right", "wrong 1", "wrong 2", "wrong 3"]
    letters = [shown[i] for i in view.permutation]
    assert view.messages[0]["content"] == (
        "Please reason step by step, and put your final choice of one letter from A/B/C/D within \\boxed{}. "
        f"Which is it?\n\nA) {letters[0]}\nB) {letters[1]}\nC) {letters[2]}\nD) {letters[3]}"
    )


def test_gpqa_real_prompts_have_the_official_layout(data_dir):
    task = get_task("gpqa_diamond")
    for problem in task.load(data_dir)[:20]:
        view = task.sample_view(problem, sample_index=5, seed=3)
        text = view.messages[0]["content"]
        prefix = "Please reason step by step, and put your final choice of one letter from A/B/C/D within \\boxed{}. "
        assert text.startswith(prefix + problem.metadata["question"] + "\n\nA) ")
        options = [problem.metadata["options"][i] for i in view.permutation]
        assert text.endswith(f"\nD) {options[3]}")
        assert f"\nB) {options[1]}\nC) {options[2]}\nD) " in text


@pytest.mark.parametrize(
    "name, prompt, expected",
    [
        (
            "arith-demo",
            "lighteval",
            "Solve the following math problem efficiently and clearly.  The last line of your response should "
            "be of the following format: 'Therefore, the final answer is: $\\boxed{ANSWER}$. I hope it is "
            "correct' (without quotes) where ANSWER is just the final number or expression that solves the "
            "problem. Think step by step before answering.\n\n"
            "10 students share 70 pencils equally. How many pencils does each student get?",
        ),
        (
            "arith-demo",
            "simple-evals",
            "Solve the following math problem step by step. The last line of your response should be of the "
            "form ANSWER: $ANSWER (without quotes) where $ANSWER is the answer to the problem.\n\n"
            "10 students share 70 pencils equally. How many pencils does each student get?\n\n"
            'Remember to put your answer on its own line after "ANSWER:", and you do not need to use a '
            "\\boxed command.",
        ),
    ],
)
def test_named_alternative_math_prompts(name, prompt, expected):
    assert get_task(name).load(prompt=prompt)[3].messages[0]["content"] == expected


@pytest.mark.parametrize("prompt", ["lighteval", "simple-evals"])
def test_named_alternative_gpqa_prompt(prompt):
    task = get_task("gpqa_diamond")
    problem = Problem(**{**FAKE_GPQA.__dict__, "metadata": {**FAKE_GPQA.metadata, "prompt_name": prompt}})
    text = task.sample_view(problem, 0, 0).messages[0]["content"]
    assert text.startswith(
        "Answer the following multiple choice question. The last line of your response should be of the "
        "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step "
        "before answering.\n\nWhich is it?\n\nA) "
    )


def test_problem_text_is_inserted_verbatim_never_reinterpreted():
    # LaTeX braces and placeholder-looking text in a problem must come through untouched.
    from tasks.prompts import MATH_PROMPTS, render

    text = "Find {A} and {problem} in \\frac{1}{2}."
    assert render(MATH_PROMPTS["official"], problem=text).endswith("\\boxed{}. " + text)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_offers_the_three_prompts_with_distinct_hashes(name):
    task = get_task(name)
    assert set(task.prompt_templates) == {"official", "lighteval", "simple-evals"}
    assert task.default_prompt == "official"
    assert task.prompt_hash() == task.prompt_hash("official")
    assert task.prompt_hash("official") != task.prompt_hash("lighteval")


def test_unknown_prompt_names_the_valid_ones():
    with pytest.raises(EvalkitError, match="unknown prompt 'nope'.*official, lighteval, simple-evals"):
        get_task("aime24").prompt_hash("nope")
