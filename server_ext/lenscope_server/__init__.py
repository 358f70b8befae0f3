"""The Jupyter server extension of lenscope: HTTP routes over the core library.

Imports stay light here: the model worker process imports ``lenscope_server.worker.process``
and must not pay for jupyter_server.
"""

from __future__ import annotations

from typing import Any

from lenscope import __version__  # one version for the distribution (lenscope is light to import)

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from lenscope_server.app import LenscopeApp

    return [{"module": "lenscope_server", "app": LenscopeApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "lenscope"}]
