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

from lenscope import __version__
from lenscope.wire import (
    ActivationsRequest,
    ActivationsResponse,
    AnalyzeRequest,
    AnalyzeResponse,
    CompareRequest,
    ErrorResponse,
    HealthResponse,
    IndexBuildRequest,
    IndexesResponse,
    JobResponse,
    JobsResponse,
    ModelsResponse,
    NeuronCardResponse,
    NeuronSearchResponse,
)

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
MSGPACK = "application/msgpack"
REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _content(model: type[BaseModel], msgpack: bool) -> dict[str, Any]:
    types = ["application/json", MSGPACK] if msgpack else ["application/json"]
    return {t: {"schema": _ref(model)} for t in types}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Malformed body or invalid input (the message names the field and the problem)",
        403: "Not authenticated or not authorized (Jupyter's own auth), or a path outside the server root",
        404: "Unknown model or job, or no neuron index for the model",
        413: "Text or body over its limit (the message gives the limit)",
        415: "Unsupported Content-Type",
        503: "Worker restarting, queue full or model unavailable; see Retry-After",
    }
    return {str(s): {"description": text[s], "content": _content(ErrorResponse, True)} for s in statuses}


TEXT_ERRORS = (400, 403, 404, 413, 415, 503)


def _operation(
    operation_id: str, summary: str, request: type[BaseModel] | None, response: type[BaseModel], errors: tuple[int, ...]
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {"200": {"description": summary, "content": _content(response, True)}, **_errors(*errors)},
    }
    if request is not None:
        op["requestBody"] = {"required": True, "content": _content(request, True)}
    return op


def build_spec() -> dict[str, Any]:
    _, defs = models_json_schema(
        [
            (m, "validation")
            for m in (
                AnalyzeRequest,
                AnalyzeResponse,
                ActivationsRequest,
                ActivationsResponse,
                ModelsResponse,
                NeuronCardResponse,
                NeuronSearchResponse,
                IndexBuildRequest,
                CompareRequest,
                IndexesResponse,
                JobResponse,
                JobsResponse,
                HealthResponse,
                ErrorResponse,
            )
        ],
        ref_template=REF,
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lenscope",
            "version": __version__,
            "description": "lenscope's HTTP API, served by its Jupyter server extension under {base_url}lenscope/api/. "
            "Every route needs Jupyter's auth. Send Accept: application/msgpack for msgpack responses; arrays "
            "travel as {dtype, shape, data} with data as little-endian bytes (msgpack) or a flat list (JSON).",
        },
        "paths": {
            "/lenscope/api/models": {
                "get": _operation(
                    "listModels",
                    "Available models, their shapes, and whether each is loadable now",
                    None,
                    ModelsResponse,
                    (403, 503),
                )
            },
            "/lenscope/api/analyze": {
                "post": _operation(
                    "analyze",
                    "Per-token next-token predictions and top MLP neurons of a text",
                    AnalyzeRequest,
                    AnalyzeResponse,
                    TEXT_ERRORS,
                )
            },
            "/lenscope/api/activations": {
                "post": _operation(
                    "activations",
                    "Post-activations of chosen MLP neurons at every token of a text",
                    ActivationsRequest,
                    ActivationsResponse,
                    TEXT_ERRORS,
                )
            },
            "/lenscope/api/neurons/{model}/{layer}/{index}": {
                "get": {
                    **_operation(
                        "neuronCard",
                        "A neuron's card: top corpus examples, direct logit effect, activation histogram",
                        None,
                        NeuronCardResponse,
                        (400, 403, 404),
                    ),
                    "parameters": [
                        {"name": name, "in": "path", "required": True, "schema": {"type": kind}}
                        for name, kind in (("model", "string"), ("layer", "integer"), ("index", "integer"))
                    ],
                }
            },
            "/lenscope/api/neurons/{model}/search": {
                "get": {
                    **_operation(
                        "neuronSearch",
                        "Neurons whose top examples peak on a token (by its text)",
                        None,
                        NeuronSearchResponse,
                        (400, 403, 404),
                    ),
                    "parameters": [
                        {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
                    ],
                }
            },
            "/lenscope/api/indexes": {
                "get": _operation(
                    "listIndexes", "Neuron indexes available (built here or shipped)", None, IndexesResponse, (403,)
                ),
                "post": {
                    **_operation(
                        "buildIndex",
                        "Start building a neuron index over files under the server root (a job)",
                        IndexBuildRequest,
                        JobResponse,
                        (400, 403),
                    ),
                    "responses": {
                        "202": {"description": "The job, started", "content": _content(JobResponse, True)},
                        **_errors(400, 403),
                    },
                },
            },
            "/lenscope/api/compare": {
                "post": {
                    **_operation(
                        "compareCorpus",
                        "Start comparing two models token by token over files under the server root (a job)",
                        CompareRequest,
                        JobResponse,
                        (400, 403),
                    ),
                    "responses": {
                        "202": {"description": "The job, started", "content": _content(JobResponse, True)},
                        **_errors(400, 403),
                    },
                }
            },
            "/lenscope/api/jobs": {"get": _operation("listJobs", "Jobs of this server", None, JobsResponse, (403,))},
            "/lenscope/api/jobs/{job_id}": {
                "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": _operation("getJob", "A job's state and progress", None, JobResponse, (403, 404)),
                "delete": _operation(
                    "cancelJob", "Cancel a job (its partial output is never published)", None, JobResponse, (403, 404)
                ),
            },
            "/lenscope/api/health": {
                "get": _operation(
                    "health", "Worker state, loaded models, queue depth, cache hit rate", None, HealthResponse, (403,)
                )
            },
        },
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
