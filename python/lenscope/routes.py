"""Every HTTP route of lenscope's API, declared once.

The server's handler table (``lenscope_server.handlers.route_table``) and the OpenAPI spec
(``lenscope.openapi``) are both built from :data:`ROUTES`, and the contract tests enumerate it:
a route cannot exist in one and not the other. The text operations' routes come from their own
table (:data:`lenscope.operations.OPERATIONS`). No web framework is imported here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from lenscope import wire
from lenscope.operations import OPERATIONS, Operation
from lenscope.validation import MAX_LAYERS, MAX_NAME_CHARS, MAX_NEURON_INDEX

PREFIX = "/lenscope/api"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path" | "query"
    schema: dict[str, Any]
    pattern: str = r"[^/]+"  # how a path parameter is matched in the URL (unanchored)
    description: str = ""
    required: bool = True


@dataclass(frozen=True)
class Route:
    path: str  # an OpenAPI path template under PREFIX, e.g. "/neurons/{model}/{layer}/{index}"
    method: str  # get | post | delete
    operation_id: str
    summary: str
    response: type[BaseModel] | None  # None: a file download (``downloads`` gives its types)
    errors: tuple[int, ...]
    request: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    status: int = 200
    downloads: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return PREFIX + self.path

    def regex(self) -> str:
        """The tornado URL pattern: each ``{param}`` becomes a group with its own pattern."""
        by_name = {p.name: p for p in self.params if p.where == "path"}
        return PREFIX + re.sub(r"\{(\w+)\}", lambda m: f"({by_name[m.group(1)].pattern})", self.path)


def operation_route(op: Operation) -> Route:
    """The one route of a text operation (:mod:`lenscope.operations`): ``POST /{name}``."""
    return Route(op.path, "post", op.operation_id, op.summary, op.response, op.errors, request=op.request)


MODEL = Param("model", "path", {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS}, description="Model name")
JOB_ID = Param("job_id", "path", {"type": "string", "pattern": "^[A-Za-z0-9-]{1,40}$"}, pattern="[A-Za-z0-9-]{1,40}")
INDEX_NAME = Param(
    "name", "path", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}, pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
)
EXPORT_NAME = Param(
    "name",
    "path",
    {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"},
    pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,199}",
)
LAYER = Param("layer", "path", {"type": "integer", "minimum": 0, "maximum": MAX_LAYERS - 1}, pattern="[0-9]{1,6}")
NEURON = Param("index", "path", {"type": "integer", "minimum": 0, "maximum": MAX_NEURON_INDEX}, pattern="[0-9]{1,7}")
SAE = Param("sae", "path", INDEX_NAME.schema, pattern=INDEX_NAME.pattern, description="SAE name (GET models lists them)")
INDEX_QUERY = Param(
    "index",
    "query",
    INDEX_NAME.schema,
    required=False,
    description="The index to read (GET indexes lists them); default: the model's with the most tokens",
)
BY = Param(
    "by",
    "query",
    {"type": "string", "enum": ["token", "description"], "default": "token"},
    required=False,
    description="token: units whose top examples peak on it; description: units whose description matches",
)
HEAD = Param("head", "path", {"type": "integer", "minimum": 0, "maximum": 9999}, pattern="[0-9]{1,4}")
VOCAB = Param(
    "vocab",
    "query",
    {"type": "string", "enum": ["frequent", "all"], "default": "frequent"},
    required=False,
    description="Read the circuits over the 1,000 most frequent tokens of the model's index corpus, or all tokens",
)
MODEL_ERRORS = (400, 403, 404, 503, 504)
JOB_ERRORS = (400, 403, 413, 415, 503)

ROUTES: tuple[Route, ...] = (
    Route("/models", "get", "listModels", "Available models, their shapes, and whether each is loadable now",
          wire.ModelsResponse, (403, 503, 504)),
    *(operation_route(op) for op in OPERATIONS),
    Route("/neurons/{model}/{layer}/{index}", "get", "neuronCard",
          "A neuron's card: top corpus examples, direct logit effect, activation histogram",
          wire.NeuronCardResponse, (400, 403, 404), params=(MODEL, LAYER, NEURON, INDEX_QUERY)),
    Route("/neurons/{model}/{layer}/{index}/inputs", "get", "neuronInputs",
          "A neuron's input side: the tokens that most raise its pre-activation on their own (from the weights)",
          wire.NeuronInputsResponse, MODEL_ERRORS, params=(MODEL, LAYER, NEURON, VOCAB)),
    Route("/heads/{model}/scores", "get", "headScores",
          "Every head's role scores (previous-token, duplicate-token, induction, BOS) on repeated random tokens, "
          "with the model's in-context gain", wire.HeadScoresResponse, MODEL_ERRORS, params=(
              MODEL,
              Param("length", "query", {"type": "integer", "minimum": 2, "maximum": 4096, "default": 50}, required=False,
                    description="Random tokens per copy (at most half the model's context)"),
              Param("seed", "query", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "default": 0}, required=False,
                    description="Seed of the random tokens"),
          )),
    Route("/heads/{model}/{layer}/{head}", "get", "headCard",
          "A head read from its weights: OV and QK circuit top token pairs, copying score, positional QK; "
          "the OV row of a source token and the QK row of a query token on request",
          wire.HeadCardResponse, MODEL_ERRORS, params=(
              MODEL, LAYER, HEAD, VOCAB,
              Param("source", "query", {"type": "string", "minLength": 1, "maxLength": 200}, required=False,
                    description="A token (its text, exactly one token, or its id): what the head writes when it attends to it"),
              Param("query", "query", {"type": "string", "minLength": 1, "maxLength": 200}, required=False,
                    description="A token (its text, exactly one token, or its id): the keys a query of it looks for"),
          )),
    Route("/neurons/{model}/search", "get", "neuronSearch",
          "Neurons whose top examples peak on a token (by its text), or whose description matches words",
          wire.NeuronSearchResponse, (400, 403, 404), params=(
              MODEL,
              Param("q", "query", {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
                    description="Token text; with by=description, words such as 'closing bracket'"),
              BY, INDEX_QUERY,
          )),
    Route("/features/{model}/{sae}/{index}", "get", "featureCard",
          "An SAE feature's card from a feature index: top corpus examples, logit effect of its decoder direction, histogram",
          wire.NeuronCardResponse, (400, 403, 404), params=(MODEL, SAE, NEURON, INDEX_QUERY)),
    Route("/features/{model}/{sae}/search", "get", "featureSearch",
          "SAE features whose top examples peak on a token, or whose description matches words",
          wire.NeuronSearchResponse, (400, 403, 404), params=(
              MODEL, SAE,
              Param("q", "query", {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
                    description="Token text; with by=description, words such as 'indentation'"),
              BY, INDEX_QUERY,
          )),
    Route("/indexes", "get", "listIndexes", "Neuron indexes available (built here or shipped), broken ones included",
          wire.IndexesResponse, (403,)),
    Route("/indexes", "post", "buildIndex", "Start building a neuron index over files under the server root (a job)",
          wire.JobResponse, JOB_ERRORS, request=wire.IndexBuildRequest, status=202),
    Route("/indexes/{name}/document", "get", "indexDocument",
          "The text of one file as an index stored it (for examples whose file is not in the workspace)",
          wire.IndexDocumentResponse, (400, 403, 404), params=(
              INDEX_NAME,
              Param("path", "query", {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS * 20},
                    description="The example's file, as the card names it"),
              Param("cell", "query", {"type": "integer", "minimum": 0, "maximum": 1_000_000}, required=False,
                    description="A notebook's cell: only that cell's source"),
          )),
    Route("/compare", "post", "compareCorpus",
          "Start comparing two models token by token over files under the server root (a job)",
          wire.JobResponse, JOB_ERRORS, request=wire.CompareRequest, status=202),
    Route("/exports/{name}", "get", "downloadExport", "A comparison's export (CSV or JSON lines), as a download",
          None, (403, 404), params=(EXPORT_NAME,), downloads=("text/csv", "application/jsonl")),
    Route("/jobs", "get", "listJobs", "Jobs of this server", wire.JobsResponse, (403,)),
    Route("/jobs/{job_id}", "get", "getJob", "A job's state and progress", wire.JobResponse, (403, 404), params=(JOB_ID,)),
    Route("/jobs/{job_id}", "delete", "cancelJob", "Cancel a job (its partial output is never published)",
          wire.JobResponse, (403, 404), params=(JOB_ID,)),
    Route("/health", "get", "health", "Worker state, loaded models, queue depth, cache use", wire.HealthResponse, (403,)),
    Route("/openapi.json", "get", "openapi", "This API's OpenAPI document", None, (403,), downloads=("application/json",)),
)  # fmt: skip


def paths() -> dict[str, list[Route]]:
    """Routes grouped by path, in declaration order (one handler class per path)."""
    out: dict[str, list[Route]] = {}
    for r in ROUTES:
        out.setdefault(r.path, []).append(r)
    return out
