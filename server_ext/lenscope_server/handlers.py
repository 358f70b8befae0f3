"""Thin HTTP handlers: authenticate, decode, delegate to the service, encode.

The URL table comes from :data:`lenscope.routes.ROUTES` (the same declaration the OpenAPI spec is
built from); every text operation (:data:`lenscope.operations.OPERATIONS`) is served by
:class:`OperationHandler`. A client that goes away while its request waits for the model worker
cancels it (:meth:`LenscopeHandler.unless_gone`), so abandoned requests do not hold the queue.

Errors are mapped in ``errors`` and written by :meth:`LenscopeHandler.write_error`, never as
tracebacks; client errors are logged as one line, not as an ERROR with a traceback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import msgpack
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from pydantic import BaseModel, ValidationError
from tornado import web

from lenscope.errors import InputTooLarge, LenscopeError
from lenscope.operations import OPERATIONS, Operation
from lenscope.routes import PREFIX, paths
from lenscope.wire import CompareRequest, IndexBuildRequest
from lenscope.wire_codec import encode_msgpack
from lenscope_server.errors import CODE_BY_STATUS, MSGPACK, RETRY_AFTER_S, error_body, relative_to_root, status_for
from lenscope_server.jobs import JobManager
from lenscope_server.service import LenscopeService, Served

AUTH_RESOURCE = "lenscope"
TOO_LONG = {"string_too_long", "too_long"}
T = TypeVar("T")


class RequestError(LenscopeError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class LenscopeHandler(APIHandler):
    auth_resource = AUTH_RESOURCE
    methods: tuple[str, ...] = ()  # set by route_table from the route declarations
    _work: asyncio.Future[Any] | None = None  # the worker request awaited: cancelled if the client goes away
    _client_gone = False

    @property
    def service(self) -> LenscopeService:
        service: LenscopeService = self.settings["lenscope_service"]
        return service

    @property
    def jobs(self) -> JobManager:
        jobs: JobManager = self.settings["lenscope_jobs"]
        return jobs

    @property
    def max_body_bytes(self) -> int:
        return int(self.settings["lenscope_max_body_bytes"])

    def wants_msgpack(self) -> bool:
        return MSGPACK in (self.request.headers.get("Accept") or "")

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """A client's mistake is one line at INFO; only real server faults get a traceback."""
        status = status_for(value.code) if isinstance(value, LenscopeError) else getattr(value, "status_code", 500)
        if status < 500 or isinstance(value, LenscopeError):
            message = value.message if isinstance(value, LenscopeError) else (getattr(value, "log_message", None) or value)
            self.log.info("lenscope: %s %s -> %s: %s", self.request.method, self.request.path, status, message)
        else:
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, LenscopeError):
            code, message = exc.code, exc.message
            status_code = status_for(code)
        elif isinstance(exc, web.HTTPError):
            code = CODE_BY_STATUS.get(exc.status_code, "http_error")
            message = exc.log_message or exc.reason or self._reason or "request failed"
            if exc.status_code == 405:
                message = f"{self.request.method} is not allowed on {self.request.path}; allowed: {', '.join(self.methods)}"
        else:
            code, message = "internal", "internal error in lenscope; see the server log"
        self.clear()
        self.set_status(status_code)
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.methods))
        if code in RETRY_AFTER_S:
            self.set_header("Retry-After", str(RETRY_AFTER_S[code]))
        body, ctype = error_body(code, relative_to_root(message, self.settings.get("lenscope_root")), self.wants_msgpack())
        self.finish(body, set_content_type=ctype)

    def send_served(self, served: Served) -> None:
        """Bytes the worker encoded (maybe cached): sent as they are, server timings in a header."""
        self.set_header("Server-Timing", served.server_timing())
        self.finish(served.body, set_content_type=MSGPACK if served.encoding == "msgpack" else "application/json")

    async def unless_gone(self, work: Coroutine[Any, Any, T]) -> T | None:
        """Await ``work`` (a request to the model worker) unless the client goes away first: then
        it is cancelled (a request still queued gives its slot back) and this returns None."""
        task: asyncio.Future[T] = asyncio.ensure_future(work)
        self._work = task
        try:
            return await task
        except asyncio.CancelledError:
            if self._client_gone and task.cancelled():
                return None
            raise
        finally:
            self._work = None

    def on_connection_close(self) -> None:
        self._client_gone = True
        if self._work is not None and not self._work.done():
            self._work.cancel()
        super().on_connection_close()

    def send_plain(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        if self.wants_msgpack():
            self.finish(encode_msgpack(payload), set_content_type=MSGPACK)
        else:
            self.finish(json.dumps(payload), set_content_type="application/json")

    def encoding(self) -> str:
        return "msgpack" if self.wants_msgpack() else "json"

    def parse_body(self, model: type[BaseModel]) -> Any:
        body = self.request.body or b""
        if len(body) > self.max_body_bytes:
            raise RequestError("body_too_large", f"request body is {len(body):,} bytes; the limit is {self.max_body_bytes:,}")
        ctype = (self.request.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        kind = "msgpack" if ctype == MSGPACK else "JSON"
        try:
            if ctype == MSGPACK:
                data = msgpack.unpackb(body, raw=False)
            elif ctype in ("application/json", "text/plain", ""):
                data = json.loads(body.decode("utf-8"))
            else:
                raise RequestError(
                    "unsupported_media_type", f"Content-Type {ctype!r} is not supported: send application/json or {MSGPACK}"
                )
        except RecursionError:
            raise RequestError("bad_request", f"request body is {kind} nested too deeply") from None
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
            raise RequestError("bad_request", f"request body is not valid {kind}: {exc}") from exc
        if not isinstance(data, dict):
            raise RequestError("bad_request", f"request body must be an object, got {type(data).__name__}")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            message = f"{where}: {first['msg']}"
            if first["type"] in TOO_LONG:
                raise InputTooLarge(message) from None
            raise RequestError("invalid_input", message) from None
        except RecursionError:
            raise RequestError("bad_request", f"request body is {kind} nested too deeply") from None


class ModelsHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send_plain(await self.service.models())


class OperationHandler(LenscopeHandler):
    """Every text operation (:data:`lenscope.operations.OPERATIONS`): ``route_table`` makes one
    subclass per entry, with its ``operation``."""

    operation: Operation

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.parse_body(self.operation.request)
        served = await self.unless_gone(self.service.run(self.operation, request, self.encoding()))
        if served is not None:
            self.send_served(served)


class NeuronHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self, model: str, layer: str, index: str) -> None:
        index_name = self.get_query_argument("index", None)
        self.send_plain(self.service.neuron_card(model, int(layer), int(index), index_name=index_name))


class FeatureHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self, model: str, sae: str, index: str) -> None:
        index_name = self.get_query_argument("index", None)
        self.send_plain(self.service.neuron_card(model, 0, int(index), sae=sae, index_name=index_name))


class FeatureSearchHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self, model: str, sae: str) -> None:
        by = search_by(self.get_query_argument("by", "token"))
        index_name = self.get_query_argument("index", None)
        self.send_plain(self.service.feature_search(model, sae, self.get_query_argument("q", ""), by, index_name))


class NeuronInputsHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    async def get(self, model: str, layer: str, index: str) -> None:
        vocab = self.get_query_argument("vocab", "frequent")
        card = await self.unless_gone(self.service.neuron_inputs(model, int(layer), int(index), vocab))
        if card is not None:
            self.send_plain(card)


class HeadScoresHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    async def get(self, model: str) -> None:
        length, seed = int_query(self, "length", 50), int_query(self, "seed", 0)
        scores = await self.unless_gone(self.service.head_scores(model, length, seed))
        if scores is not None:
            self.send_plain(scores)


def int_query(handler: LenscopeHandler, name: str, default: int) -> int:
    """An integer query parameter, or a 400 naming it."""
    raw = handler.get_query_argument(name, None)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise RequestError("bad_request", f"query parameter {name} must be an integer, got {raw!r}") from None


class HeadCardHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    async def get(self, model: str, layer: str, head: str) -> None:
        vocab = self.get_query_argument("vocab", "frequent")
        # a token's text keeps its spaces (" for")
        source, query = self.get_query_argument("source", None, strip=False), self.get_query_argument("query", None, strip=False)
        card = await self.unless_gone(self.service.head_card(model, int(layer), int(head), vocab, source, query))
        if card is not None:
            self.send_plain(card)


class NeuronSearchHandler(LenscopeHandler):
    # the query parameter is ``q``: ``token`` would be taken by Jupyter's auth as the API token
    @web.authenticated
    @authorized
    def get(self, model: str) -> None:
        by = search_by(self.get_query_argument("by", "token"))
        index_name = self.get_query_argument("index", None)
        self.send_plain(self.service.neuron_search(model, self.get_query_argument("q", ""), by, index_name))


def search_by(by: str) -> str:
    """A search's ``by``: token or description."""
    if by not in ("token", "description"):
        raise RequestError("invalid_input", f"by must be token or description, got {by[:40]!r}")
    return by


class IndexesHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.send_plain({"indexes": self.service.indexes.listing()})

    @web.authenticated
    @authorized
    def post(self) -> None:
        request = self.parse_body(IndexBuildRequest)
        job = self.jobs.start_index_build(
            request.model or self.service.default_model, request.paths, request.name, request.k, request.sae
        )
        self.send_plain(job.public(), status=202)


class IndexDocumentHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self, name: str) -> None:
        cell = self.get_query_argument("cell", None)
        if cell is not None and not (cell.isascii() and cell.isdigit() and len(cell) <= 7):
            raise RequestError("invalid_input", f"cell must be a cell number, got {cell[:40]!r}")
        self.send_plain(
            self.service.index_document(name, self.get_query_argument("path", ""), None if cell is None else int(cell))
        )


class CompareHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def post(self) -> None:
        r = self.parse_body(CompareRequest)
        job = self.jobs.start_compare(r.model_a or self.service.default_model, r.model_b, r.paths, r.clamp, r.min_count)
        self.send_plain(job.public(), status=202)


class ExportHandler(LenscopeHandler):
    """Exports live under ``.lenscope/`` (hidden from Jupyter's contents API): served here, as downloads."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        path, ctype = self.jobs.export_file(name)
        self.set_header("Content-Type", ctype)
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                self.write(chunk)
                await self.flush()
        self.finish()


class JobsHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.send_plain({"jobs": [j.public() for j in self.jobs.jobs.values()]})


class JobHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self, job_id: str) -> None:
        self.send_plain(self.jobs.get(job_id).public())

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        self.send_plain((await self.jobs.cancel(job_id)).public())


class HealthHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.send_plain({**self.service.health(), "job_worker": self.jobs.worker.health()})


class OpenAPIHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        from lenscope.openapi import build_spec

        self.finish(json.dumps(build_spec()), set_content_type="application/json")


class NotFoundHandler(LenscopeHandler):
    """Unknown paths under the API answer in the API's error format (after auth, like the rest)."""

    methods = ("GET", "POST", "DELETE")

    def _missing(self) -> None:
        raise RequestError("not_found", f"no lenscope API route {self.request.path!r}")

    @web.authenticated
    @authorized
    def get(self) -> None:
        self._missing()

    @web.authenticated
    @authorized
    def post(self) -> None:
        self._missing()

    @web.authenticated
    @authorized
    def delete(self) -> None:
        self._missing()


def _operation_handler(op: Operation) -> type[OperationHandler]:
    name = op.operation_id[0].upper() + op.operation_id[1:] + "Handler"
    return type(name, (OperationHandler,), {"operation": op})


HANDLERS: dict[str, type[LenscopeHandler]] = {
    **{op.path: _operation_handler(op) for op in OPERATIONS},
    "/models": ModelsHandler,
    "/neurons/{model}/{layer}/{index}": NeuronHandler,
    "/neurons/{model}/{layer}/{index}/inputs": NeuronInputsHandler,
    "/neurons/{model}/search": NeuronSearchHandler,
    "/features/{model}/{sae}/{index}": FeatureHandler,
    "/features/{model}/{sae}/search": FeatureSearchHandler,
    "/heads/{model}/scores": HeadScoresHandler,
    "/heads/{model}/{layer}/{head}": HeadCardHandler,
    "/indexes": IndexesHandler,
    "/indexes/{name}/document": IndexDocumentHandler,
    "/compare": CompareHandler,
    "/exports/{name}": ExportHandler,
    "/jobs": JobsHandler,
    "/jobs/{job_id}": JobHandler,
    "/health": HealthHandler,
    "/openapi.json": OpenAPIHandler,
}


def route_table() -> list[tuple[str, Any]]:
    """One URL pattern per declared path; each handler implements exactly its declared methods."""
    declared = paths()
    if declared.keys() != HANDLERS.keys():
        raise RuntimeError(f"routes and handlers differ: {sorted(declared.keys() ^ HANDLERS.keys())}")
    table: list[tuple[str, Any]] = []
    for path, routes in declared.items():
        base = HANDLERS[path]
        methods = tuple(r.method.upper() for r in routes)
        missing = [m for m in methods if getattr(base, m.lower()) is getattr(web.RequestHandler, m.lower())]
        if missing:
            raise RuntimeError(f"{base.__name__} does not implement {missing} of {path}")
        handler = type(base.__name__, (base,), {"methods": methods})
        table.append((routes[0].regex(), handler))
    table.append((PREFIX + "/.*", NotFoundHandler))
    return table
