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
