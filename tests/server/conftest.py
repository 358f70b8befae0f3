from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def lenscope_config() -> dict[str, Any]:
    """Override per test (e.g. a small queue) by redefining this fixture."""
    return {}


@pytest.fixture
def jp_server_config(lenscope_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"lenscope_server": True}},
        "LenscopeApp": {"preload": False, "worker_threads": 2, **lenscope_config},
    }


@pytest.fixture
def jp_fetch(jp_fetch: Any) -> Any:
    """pytest-jupyter's fetch with a 120 s default timeout instead of 20 s: the first request
    starts the worker (torch, the model), which takes longer than 20 s on a loaded 2-core machine."""

    def fetch(*parts: str, **kwargs: Any) -> Any:
        kwargs.setdefault("request_timeout", 120)
        return jp_fetch(*parts, **kwargs)

    return fetch
