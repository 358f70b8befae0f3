"""Thin HTTP handlers: authenticate, validate, delegate to the core, map errors."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

import lenscope

AUTH_RESOURCE = "lenscope"


class LenscopeHandler(APIHandler):
    auth_resource = AUTH_RESOURCE


class HealthHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.finish(json.dumps({"status": "ok", "version": lenscope.__version__}))


def route_table() -> list[tuple[str, Any]]:
    return [(r"/lenscope/api/health", HealthHandler)]
