"""The Jupyter server extension of lenscope: HTTP routes over the core library."""

from __future__ import annotations

from typing import Any

from lenscope_server.app import LenscopeApp

__all__ = ["LenscopeApp"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "lenscope_server", "app": LenscopeApp}]
