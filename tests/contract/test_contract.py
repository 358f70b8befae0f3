"""One source of truth: the pydantic schema -> docs/openapi.json -> labextension TypeScript types.

Each test fails when a committed artifact drifts from what the schema generates.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from lenscope.openapi import SPEC_PATH, build_spec, render
from lenscope.routes import ROUTES

ROOT = Path(__file__).resolve().parents[2]
TS_TYPES = ROOT / "labextension" / "src" / "api" / "schema.ts"
OPENAPI_TS = ROOT / "node_modules" / ".bin" / "openapi-typescript"


def test_committed_openapi_matches_the_schema() -> None:
    assert SPEC_PATH.read_text(encoding="utf-8") == render(), "run: python -m lenscope.openapi"


def test_committed_typescript_types_match_the_openapi(tmp_path: Path) -> None:
    assert OPENAPI_TS.exists(), "node dependencies are missing: run `jlpm install` (make test does)"
    out = tmp_path / "schema.ts"
    subprocess.run([str(OPENAPI_TS), str(SPEC_PATH), "-o", str(out)], check=True, capture_output=True, timeout=120)
    assert TS_TYPES.read_text(encoding="utf-8") == out.read_text(encoding="utf-8"), "run: jlpm gen:types"


def test_spec_and_server_serve_the_declared_routes() -> None:
    """The handler table and the spec both come from ROUTES: same paths, same methods."""
    from tornado import web

    from lenscope_server.handlers import route_table

    spec = build_spec()
    assert {p: set(ops) for p, ops in spec["paths"].items()} == {
        path: {r.method for r in ROUTES if r.url == path} for path in {r.url for r in ROUTES}
    }
    table = dict(route_table())
    for route in ROUTES:
        handler = table[route.regex()]
        implemented = {
            m for m in ("get", "post", "delete", "put", "patch") if getattr(handler, m) is not getattr(web.RequestHandler, m)
        }
        assert implemented == {r.method for r in ROUTES if r.path == route.path}, route.path


def _untyped(node: object, where: str) -> list[str]:
    """Places in a JSON schema that accept any object (a ``dict[str, Any]`` in the models)."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("additionalProperties") is True or (
            node.get("type") == "object" and not {"properties", "additionalProperties"} & node.keys()
        ):
            found.append(where)
        for key, value in node.items():
            found += _untyped(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _untyped(value, f"{where}[{i}]")
    return found


def test_every_response_is_a_typed_schema_model() -> None:
    spec = build_spec()
    for route in ROUTES:
        ok = spec["paths"][route.url][route.method]["responses"][str(route.status)]
        if route.response is None:
            assert route.downloads, f"{route.path}: a route without a response model must declare its download types"
            continue
        for content in ok["content"].values():
            assert content["schema"] == {"$ref": f"#/components/schemas/{route.response.__name__}"}
    assert _untyped(spec["components"]["schemas"], "schemas") == []


def test_every_error_status_is_declared() -> None:
    spec = build_spec()
    analyze = spec["paths"]["/lenscope/api/analyze"]["post"]
    assert {"200", "400", "403", "404", "413", "415", "503", "504"} <= set(analyze["responses"])
    assert set(analyze["requestBody"]["content"]) == {"application/json", "application/msgpack"}
    from lenscope_server.errors import STATUS_BY_CODE

    declared = {int(s) for r in ROUTES for s in spec["paths"][r.url][r.method]["responses"]}
    assert set(STATUS_BY_CODE.values()) - {500} <= declared | {405}
