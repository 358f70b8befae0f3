"""One source of truth: the pydantic schema -> docs/openapi.json -> labextension TypeScript types.

Each test fails when a committed artifact drifts from what the schema generates.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from lenscope.openapi import SPEC_PATH, build_spec, render

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


def test_spec_covers_every_route_and_error_status() -> None:
    spec = build_spec()
    routes = (
        "models",
        "analyze",
        "activations",
        "health",
        "neurons/{model}/{layer}/{index}",
        "neurons/{model}/search",
        "indexes",
        "compare",
        "jobs",
        "jobs/{job_id}",
    )
    assert set(spec["paths"]) == {f"/lenscope/api/{r}" for r in routes}
    analyze = spec["paths"]["/lenscope/api/analyze"]["post"]
    assert {"200", "400", "403", "404", "413", "415", "503"} <= set(analyze["responses"])
    assert set(analyze["requestBody"]["content"]) == {"application/json", "application/msgpack"}
    for name in (
        "AnalyzeRequest",
        "AnalyzeResponse",
        "ActivationsRequest",
        "ActivationsResponse",
        "ModelsResponse",
        "HealthResponse",
        "ErrorResponse",
        "NDArray",
    ):
        assert name in spec["components"]["schemas"]
