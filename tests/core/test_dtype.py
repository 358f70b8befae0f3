"""Device and dtype are passed through: a model loaded in another dtype gives the same analysis
and index, within that dtype's precision, and a bad dtype is a clear error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from lenscope.analysis import analyze
from lenscope.errors import InvalidInput
from lenscope.index.build import BuildOptions, build_index
from lenscope.index.corpus import Document
from lenscope.models.registry import load_model

TEXT = "import os\n\n\ndef walk(root):\n    for name in os.listdir(root):\n        print(name)\n"


@pytest.mark.parametrize("dtype,atol", [("float64", 1e-4), ("bfloat16", 0.25)])
def test_analysis_in_another_dtype(gelu: Any, dtype: str, atol: float) -> None:
    model = load_model("lenscope-gelu-1l", dtype=dtype)
    assert next(model.parameters()).dtype == getattr(torch, dtype)
    ref, got = analyze(gelu, TEXT), analyze(model, TEXT)
    assert got.tokens.ids.tolist() == ref.tokens.ids.tolist()
    np.testing.assert_allclose(got.predictions.actual_logprob, ref.predictions.actual_logprob, atol=atol * 4)
    if dtype == "float64":
        np.testing.assert_array_equal(got.predictions.actual_rank, ref.predictions.actual_rank)
        docs = [Document("t.py", TEXT * 3, "x")]
        a, b = build_index(gelu, docs, BuildOptions(k=4)), build_index(model, docs, BuildOptions(k=4))
        np.testing.assert_allclose(a.top_values, b.top_values, atol=atol)
        np.testing.assert_allclose(a.mean, b.mean, atol=atol)


def test_an_unknown_dtype_is_refused_before_loading() -> None:
    with pytest.raises(InvalidInput, match="dtype must be one of float32, float16, bfloat16, float64, not 'int8'"):
        load_model("lenscope-gelu-1l", dtype="int8")
