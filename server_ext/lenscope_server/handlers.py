"""Thin HTTP handlers: authenticate, decode, delegate to the service, encode. Errors are mapped
in ``errors`` and written by :meth:`LenscopeHandler.write_error`, never as tracebacks."""

from __future__ import annotations

import json
from typing import Any

import msgpack
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from pydantic import BaseModel, ValidationError
from tornado import web

from lenscope.errors import LenscopeError
from lenscope.wire import (
    ActivationsRequest,
    AnalyzeRequest,
    CompareRequest,
    IndexBuildRequest,
    decode_msgpack,
    encode_json,
    encode_msgpack,
)
from lenscope_server.errors import CODE_BY_STATUS, MSGPACK, RETRY_AFTER_S, error_body, status_for
from lenscope_server.jobs import JobManager
from lenscope_server.service import LenscopeService

AUTH_RESOURCE = "lenscope"


class RequestError(LenscopeError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class LenscopeHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

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

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, LenscopeError):
            code, message = exc.code, exc.message
            status_code = status_for(code)
        elif isinstance(exc, web.HTTPError):
            code = CODE_BY_STATUS.get(exc.status_code, "http_error")
            message = exc.reason or self._reason or "request failed"
        else:
            code, message = "internal", "internal error in lenscope; see the server log"
        self.clear()
        self.set_status(status_code)
        if code in RETRY_AFTER_S:
            self.set_header("Retry-After", str(RETRY_AFTER_S[code]))
        body, ctype = error_body(code, message, self.wants_msgpack())
        self.finish(body, set_content_type=ctype)

    def send(self, payload: dict[str, Any]) -> None:
        """A wire dict whose arrays are still msgpack bytes: pass through, or re-encode as JSON."""
        packed = msgpack.packb(payload, use_bin_type=True)
        if self.wants_msgpack():
            self.finish(packed, set_content_type=MSGPACK)
        else:
            self.finish(encode_json(decode_msgpack(packed)), set_content_type="application/json")

    def send_plain(self, payload: Any) -> None:
        if self.wants_msgpack():
            self.finish(encode_msgpack(payload), set_content_type=MSGPACK)
        else:
            self.finish(json.dumps(payload), set_content_type="application/json")

    def parse_body(self, model: type[BaseModel]) -> Any:
        body = self.request.body or b""
        if len(body) > self.max_body_bytes:
            raise RequestError("body_too_large", f"request body is {len(body):,} bytes; the limit is {self.max_body_bytes:,}")
        ctype = (self.request.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        try:
            if ctype == MSGPACK:
                data = msgpack.unpackb(body, raw=False)
            elif ctype in ("application/json", "text/plain", ""):
                data = json.loads(body.decode("utf-8"))
            else:
                raise RequestError(
                    "unsupported_media_type", f"Content-Type {ctype!r} is not supported: send application/json or {MSGPACK}"
                )
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
            kind = "msgpack" if ctype == MSGPACK else "JSON"
            raise RequestError("bad_request", f"request body is not valid {kind}: {exc}") from exc
        if not isinstance(data, dict):
            raise RequestError("bad_request", f"request body must be an object, got {type(data).__name__}")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise RequestError("invalid_input", f"{where}: {first['msg']}") from None


class ModelsHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send_plain(await self.service.models())


class AnalyzeHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.parse_body(AnalyzeRequest)
        self.send(await self.service.analyze(request))


class ActivationsHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.send(await self.service.activations(self.parse_body(ActivationsRequest)))


class NeuronHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self, model: str, layer: str, index: str) -> None:
        self.send_plain(self.service.neuron_card(model, int(layer), int(index)))


class IndexesHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.send_plain({"indexes": self.service.indexes.listing()})

    @web.authenticated
    @authorized
    def post(self) -> None:
        request = self.parse_body(IndexBuildRequest)
        job = self.jobs.start_index_build(request.model or self.service.default_model, request.paths, request.name, request.k)
        self.set_status(202)
        self.send_plain(job.public())


class CompareHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def post(self) -> None:
        r = self.parse_body(CompareRequest)
        job = self.jobs.start_compare(r.model_a or self.service.default_model, r.model_b, r.paths, r.clamp, r.min_count)
        self.set_status(202)
        self.send_plain(job.public())


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


class NeuronSearchHandler(LenscopeHandler):
    # the query parameter is ``q``: ``token`` would be taken by Jupyter's auth as the API token
    @web.authenticated
    @authorized
    def get(self, model: str) -> None:
        self.send_plain(self.service.neuron_search(model, self.get_query_argument("q", "")))


class HealthHandler(LenscopeHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.send_plain(self.service.health())


class NotFoundHandler(LenscopeHandler):
    """Unknown paths under the API answer in the API's error format (after auth, like the rest)."""

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


def route_table() -> list[tuple[str, Any]]:
    return [
        (r"/lenscope/api/models", ModelsHandler),
        (r"/lenscope/api/analyze", AnalyzeHandler),
        (r"/lenscope/api/activations", ActivationsHandler),
        (r"/lenscope/api/neurons/([^/]+)/([0-9]{1,6})/([0-9]{1,7})", NeuronHandler),
        (r"/lenscope/api/neurons/([^/]+)/search", NeuronSearchHandler),
        (r"/lenscope/api/health", HealthHandler),
        (r"/lenscope/api/indexes", IndexesHandler),
        (r"/lenscope/api/compare", CompareHandler),
        (r"/lenscope/api/jobs", JobsHandler),
        (r"/lenscope/api/jobs/([A-Za-z0-9-]{1,40})", JobHandler),
        (r"/lenscope/api/.*", NotFoundHandler),
    ]
