"""generator.dtype: "auto" picks bfloat16 on CUDA and on CPUs with native bf16, else float32."""

import pytest
import torch

from evo.config import validate_config
from evo.errors import EvoError
from evo.llm.hardware import cpu_has_bf16
from evo.llm.transformers_backend import resolve_dtype


def test_auto_dtype_follows_the_hardware():
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    assert resolve_dtype("auto", "cuda:1") == torch.bfloat16
    assert resolve_dtype("auto", "cpu") == (torch.bfloat16 if cpu_has_bf16() else torch.float32)


def test_explicit_dtypes_and_bad_ones():
    assert resolve_dtype("float32", "cuda") == torch.float32
    assert resolve_dtype("float16", "cpu") == torch.float16
    with pytest.raises(EvoError, match="unknown dtype 'int4'"):
        resolve_dtype("int4", "cpu")
    with pytest.raises(EvoError, match="generator.dtype: Input should be"):
        validate_config({"generator": {"dtype": "int4"}})
