"""Sampling defaults and validation: one place (evalkit.core.types) for the CLI, serve and the backends."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalkit.core.errors import EvalkitError
from evalkit.core.types import SamplingError, SamplingParams, sampling_problem

CLI = {"temperature": "--temperature", "top_p": "--top-p", "max_new_tokens": "--max-new-tokens"}


def test_defaults_are_the_published_protocol():
    assert SamplingParams() == SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=32768, stop=())


@pytest.mark.parametrize(
    ("temperature", "top_p", "max_new_tokens"),
    [
        (0.6, 0.95, 32768),
        (0, 1, 1),
        (0.0, 1e-9, 1),
        (2.5, 0.5, 10**6),
        (np.float32(0.5), np.float64(1), np.int64(7)),
    ],
)
def test_valid_values_pass(temperature, top_p, max_new_tokens):
    assert sampling_problem(temperature, top_p, max_new_tokens) is None
    assert SamplingParams(temperature, top_p, max_new_tokens).max_new_tokens == max_new_tokens


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ((math.nan, 0.95, 100), "--temperature must be a finite number >= 0, got nan"),
        ((math.inf, 0.95, 100), "--temperature must be a finite number >= 0, got inf"),
        ((-0.1, 0.95, 100), "--temperature must be a finite number >= 0, got -0.1"),
        ((0.6, 0.0, 100), "--top-p must be in (0, 1], got 0.0"),
        ((0.6, 1.5, 100), "--top-p must be in (0, 1], got 1.5"),
        ((0.6, math.nan, 100), "--top-p must be in (0, 1], got nan"),
        ((0.6, math.inf, 100), "--top-p must be in (0, 1], got inf"),
        ((0.6, 0.95, 0), "--max-new-tokens must be an integer >= 1, got 0"),
        ((0.6, 0.95, -3), "--max-new-tokens must be an integer >= 1, got -3"),
        ((0.6, 0.95, 2.5), "--max-new-tokens must be an integer >= 1, got 2.5"),
        ((0.6, 0.95, True), "--max-new-tokens must be an integer >= 1, got True"),
        (("0.6", 0.95, 100), "--temperature must be a finite number >= 0, got 0.6"),
    ],
)
def test_bad_values_are_refused_with_one_line_naming_the_field(values, message):
    assert sampling_problem(*values, names=CLI) == message
    with pytest.raises(SamplingError) as info:
        SamplingParams(*values)
    assert str(info.value) == message.replace("--max-new-tokens", "max_new_tokens").replace(
        "--top-p", "top_p"
    ).replace("--temperature", "temperature")
    # a user error for the CLI (one line, exit 2) and a ValueError for library callers
    assert isinstance(info.value, EvalkitError) and isinstance(info.value, ValueError)
