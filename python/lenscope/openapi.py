"""Generate ``docs/openapi.json`` from the wire schema: ``python -m lenscope.openapi [--check]``.

The pydantic models in :mod:`lenscope.wire` are the source of truth; this spec is derived
from them, and the frontend's TypeScript types from this spec (``jlpm gen:types``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from lenscope import __version__, wire
from lenscope.routes import ROUTES, Route

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
MSGPACK = "application/msgpack"
REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "Malformed body or invalid input (the message names the field and the problem)",
    403: "Not authenticated or not authorized (Jupyter's own auth), or a path outside the server root",
    404: "Unknown model, job, index, file or route, or no neuron index for the model",
    413: "Text or body over its limit (the message gives the limit)",
    415: "Unsupported Content-Type",
    503: "Worker restarting, queue full or model unavailable; see Retry-After",
    504: "The model worker did not answer within the request deadline",
}


def schema_models() -> list[type[BaseModel]]:
    """Every model a route sends or takes, and the error body."""
    out: list[type[BaseModel]] = [wire.ErrorResponse]
    for r in ROUTES:
        out += [m for m in (r.request, r.response) if m is not None and m not in out]
    return out


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _content(model: type[BaseModel]) -> dict[str, Any]:
    return {t: {"schema": _ref(model)} for t in ("application/json", MSGPACK)}


def _operation(route: Route) -> dict[str, Any]:
    if route.response is not None:
        ok = {"description": route.summary, "content": _content(route.response)}
    else:
        ok = {"description": route.summary, "content": {t: {"schema": {}} for t in route.downloads}}
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "responses": {
            str(route.status): ok,
            **{str(s): {"description": ERROR_TEXT[s], "content": _content(wire.ErrorResponse)} for s in route.errors},
        },
    }
    if route.request is not None:
        op["requestBody"] = {"required": True, "content": _content(route.request)}
    if route.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required,
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in route.params
        ]
    return op


def build_spec() -> dict[str, Any]:
    _, defs = models_json_schema([(m, "validation") for m in schema_models()], ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.url, {})[route.method] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lenscope",
            "version": __version__,
            "description": "lenscope's HTTP API, served by its Jupyter server extension under {base_url}lenscope/api/. "
            "Every route needs Jupyter's auth. Send Accept: application/msgpack for msgpack responses; arrays "
            "travel as {dtype, shape, data} with data as little-endian bytes (msgpack) or a flat list (JSON).",
        },
        "paths": paths,
        "components": {"schemas": defs["$defs"]},
    }


def render() -> str:
    return json.dumps(build_spec(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if SPEC_PATH.read_text(encoding="utf-8") != text:
            print(f"{SPEC_PATH} is out of date: run python -m lenscope.openapi", file=sys.stderr)
            return 1
        return 0
    SPEC_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SPEC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
