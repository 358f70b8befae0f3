"""Long work as jobs: started by POST, progress readable over HTTP, cancellable.

Jobs run in their own worker process (a second :class:`WorkerClient`), so an index build
never holds up the analyses a researcher is doing meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lenscope.defaults import EXPORTS_DIR
from lenscope.errors import InvalidInput, LenscopeError
from lenscope.paths import safe_relative
from lenscope_server.worker.client import QueueFull, WorkerClient


class JobNotFound(LenscopeError):
    code = "job_not_found"


class ExportNotFound(LenscopeError):
    code = "not_found"


EXPORT_TYPES = {".csv": "text/csv; charset=utf-8", ".jsonl": "application/jsonl; charset=utf-8"}
EXPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
log = logging.getLogger(__name__)


@dataclass
class Job:
    id: str
    kind: str
    model: str
    state: str = "queued"  # queued | running | done | failed | cancelled
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    created: float = field(default_factory=time.time)
    rid: int | None = None
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "model": self.model,
            "state": self.state,
            "progress": self.progress,
            "result": self.result,
            "error": self.error,
            "created": self.created,
        }


class JobManager:
    def __init__(self, worker: WorkerClient, root: Path, index_dir: Path, *, allow_hidden: bool = False,
                 cancel_grace_s: float = 5.0) -> None:  # fmt: skip
        self.worker = worker
        self.root = root
        self.index_dir = index_dir
        self.allow_hidden = allow_hidden
        self.cancel_grace_s = cancel_grace_s
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)

    def _check_paths(self, paths: list[str]) -> list[str]:
        """Every argument is checked before a job is accepted: a job that starts can run."""
        rel = [safe_relative(self.root, p, allow_hidden=self.allow_hidden) for p in paths]
        for p in rel:
            mode = (self.root / p).stat().st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise InvalidInput(f"{p!r} is not a regular file or a folder (a FIFO, socket or device is never read)")
        return rel

    def _start(self, kind: str, model: str, op: str, args: dict[str, Any]) -> Job:
        active = sum(j.state in ("queued", "running") for j in self.jobs.values())
        if active >= self.worker.config.queue_limit:
            raise QueueFull(f"{active} jobs are running (limit {self.worker.config.queue_limit}); retry when one ends")
        job = Job(id=f"job-{next(self._ids)}", kind=kind, model=model)
        self.jobs[job.id] = job
        job.task = asyncio.ensure_future(self._run(job, op, {**args, "root": str(self.root), "allow_hidden": self.allow_hidden}))
        return job

    def start_index_build(self, model: str, paths: list[str], name: str, k: int, sae: str | None = None) -> Job:
        rel = self._check_paths(paths)
        args: dict[str, Any] = {"model": model, "paths": rel, "out": str(self.index_dir / name), "k": k}
        if sae:
            args["sae"] = sae
        return self._start("index", model, "build_index", args)

    def start_compare(self, model_a: str, model_b: str, paths: list[str], clamp: float, min_count: int) -> Job:
        rel = self._check_paths(paths)
        args = {"model_a": model_a, "model_b": model_b, "paths": rel, "clamp": clamp, "min_count": min_count}
        return self._start("compare", f"{model_a} vs {model_b}", "compare_corpus", args)

    async def _run(self, job: Job, op: str, args: dict[str, Any]) -> None:
        """Always ends the job in a final state, whatever happens (nothing stays "running")."""
        job.state = "running"

        def on_progress(p: dict[str, Any]) -> None:
            job.progress = p

        def on_sent(rid: int) -> None:
            job.rid = rid

        try:
            job.result = await self.worker.request(op, args, on_progress=on_progress, on_sent=on_sent)
            job.state = "done"
        except LenscopeError as exc:
            job.state = "cancelled" if exc.code == "cancelled" or job.cancel_requested else "failed"
            job.error = {"code": "cancelled" if job.state == "cancelled" else exc.code, "message": exc.message}
        except Exception as exc:  # a bug: the job still ends, and the log has the traceback
            log.exception("lenscope job %s failed", job.id)
            job.state, job.error = "failed", {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job

    async def cancel(self, job_id: str) -> Job:
        """Ask the job's op to stop; if it has not within the grace period (stuck in a read, a
        long forward), the job worker is killed: the job ends as cancelled either way."""
        job = self.get(job_id)
        if job.state in ("queued", "running") and not job.cancel_requested:
            job.cancel_requested = True
            if job.rid is not None:
                await self.worker.cancel(job.rid)
            asyncio.get_running_loop().call_later(self.cancel_grace_s, self._force_cancel, job)
        return job

    def _force_cancel(self, job: Job) -> None:
        if job.state in ("queued", "running"):
            self.worker.kill(f"job {job.id} did not stop within {self.cancel_grace_s:g} s of being cancelled")

    def export_file(self, name: str) -> tuple[Path, str]:
        """A comparison export under ``.lenscope/compare/`` and its content type (or 404)."""
        ctype = EXPORT_TYPES.get(Path(name).suffix)
        folder = (self.root / EXPORTS_DIR).resolve()
        path = (folder / name).resolve()
        if ctype is None or not EXPORT_NAME.match(name) or path.parent != folder or not path.is_file():
            raise ExportNotFound(f"no comparison export {name!r}: run a comparison first")
        return path, ctype

    async def stop(self) -> None:
        await self.worker.stop()
