"""The ``ExtensionApp``: configuration and route registration. Handlers live in ``handlers``."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode

from lenscope.models.registry import DEFAULT_MODEL


class LenscopeApp(ExtensionApp):
    name = "lenscope"
    default_model = Unicode(DEFAULT_MODEL, help="Model used when a request names none").tag(config=True)

    def initialize_handlers(self) -> None:
        from lenscope_server.handlers import route_table

        self.handlers.extend(route_table())
