"""Build hook: the built JupyterLab extension goes into regular wheels only, not editable ones.

A regular wheel installs it to ``share/jupyter/labextensions/lenscope`` with its ``install.json``
(the JupyterLab extension template's shared-data mapping). An editable install leaves that path
to ``make build``, which links the development build there: a copy in the editable wheel would be
written through that link into ``server_ext/lenscope_server/labextension`` (and the next build
would then find ``install.json`` twice), and uninstalling it would delete the build through the
link. The frontend itself is built by the jupyter-builder hook configured in pyproject.toml.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LABEXTENSION = "share/jupyter/labextensions/lenscope"


class LabextensionSharedData(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "standard":
            build_data["shared_data"]["server_ext/lenscope_server/labextension"] = LABEXTENSION
            build_data["shared_data"]["install.json"] = f"{LABEXTENSION}/install.json"
