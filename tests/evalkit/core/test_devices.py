"""--device / --dtype resolution shared by the sambay and hf backends."""

from __future__ import annotations

import pytest
import torch

from evalkit.core.devices import resolve_device_dtype
from evalkit.core.errors import BackendError


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("auto", torch.float32),
        ("float32", torch.float32),
        ("bfloat16", torch.bfloat16),
        ("float16", torch.float16),
    ],
)
def test_cpu_dtypes(dtype, expected):
    assert resolve_device_dtype("cpu", dtype) == ("cpu", expected)


def test_unknown_dtype_is_a_one_line_error():
    with pytest.raises(BackendError, match=r"unknown dtype 'fp8'; choose auto, bfloat16, float16 or float32"):
        resolve_device_dtype("cpu", "fp8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_says_so():
    assert resolve_device_dtype("auto", "auto") == ("cpu", torch.float32)
    with pytest.raises(BackendError, match="--device cuda:1 asked for, but torch sees no CUDA GPU"):
        resolve_device_dtype("cuda:1", "auto")
