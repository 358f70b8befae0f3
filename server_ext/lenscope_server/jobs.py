"""Long work as jobs: started by POST, progress readable over HTTP, cancellable.

Jobs run in their own worker process (a second :class:`WorkerClient`), so an index build
never holds up the analyses a researcher is doing meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lenscope.errors import InvalidInput, LenscopeError
from lenscope_server.paths import safe_relative
from lenscope_server.worker.client import WorkerClient

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class JobNotFound(LenscopeError):
    code = "job_not_found"


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
    def __init__(self, worker: WorkerClient, root: Path, index_dir: Path) -> None:
        self.worker = worker
        self.root = root
        self.index_dir = index_dir
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)

    def start_index_build(self, model: str, paths: list[str], name: str, k: int) -> Job:
        if not paths:
            raise InvalidInput("paths is empty: give files or folders under the server root")
        rel = [safe_relative(self.root, p) for p in paths]
        if not NAME.match(name):
            raise InvalidInput(f"index name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        if not 1 <= k <= 200:
            raise InvalidInput(f"k must be between 1 and 200, got {k}")
        job = Job(id=f"job-{next(self._ids)}", kind="index", model=model)
        self.jobs[job.id] = job
        args = {"model": model, "root": str(self.root), "paths": rel, "out": str(self.index_dir / name), "k": k}
        job.task = asyncio.ensure_future(self._run(job, "build_index", args))
        return job

    def start_compare(self, model_a: str, model_b: str, paths: list[str], clamp: float, min_count: int) -> Job:
        if not paths:
            raise InvalidInput("paths is empty: give files or folders under the server root")
        rel = [safe_relative(self.root, p) for p in paths]
        if not -50 <= clamp <= 0:
            raise InvalidInput(f"clamp must be between -50 and 0, got {clamp}")
        job = Job(id=f"job-{next(self._ids)}", kind="compare", model=f"{model_a} vs {model_b}")
        self.jobs[job.id] = job
        args = {
            "model_a": model_a,
            "model_b": model_b,
            "root": str(self.root),
            "paths": rel,
            "clamp": clamp,
            "min_count": min_count,
        }
        job.task = asyncio.ensure_future(self._run(job, "compare_corpus", args))
        return job

    async def _run(self, job: Job, op: str, args: dict[str, Any]) -> None:
        job.state = "running"

        def on_progress(p: dict[str, Any]) -> None:
            job.progress = p

        def on_sent(rid: int) -> None:
            job.rid = rid

        try:
            job.result = await self.worker.request(op, args, on_progress=on_progress, on_sent=on_sent)
            job.state = "done"
        except LenscopeError as exc:
            job.state = "cancelled" if exc.code == "cancelled" else "failed"
            job.error = {"code": exc.code, "message": exc.message}

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job

    async def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state in ("queued", "running") and job.rid is not None:
            await self.worker.cancel(job.rid)
        return job

    async def stop(self) -> None:
        await self.worker.stop()
