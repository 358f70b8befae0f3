from __future__ import annotations

from typing import Any

import pytest
import torch

torch.set_num_threads(2)

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="session")
def gelu() -> Any:
    from lenscope.models.registry import load_model

    return load_model("lenscope-gelu-1l")


@pytest.fixture(scope="session")
def gelu2() -> Any:
    from lenscope.models.registry import load_model

    return load_model("lenscope-gelu-2l")


@pytest.fixture(scope="session")
def attn_only() -> Any:
    from lenscope.models.registry import load_model

    return load_model("lenscope-attn-only-1l")
