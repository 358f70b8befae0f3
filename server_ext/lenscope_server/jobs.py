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
from lenscope_server.kernel_models import KernelModels
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
    index: str | None = None  # the index a build writes
    trigger: str = "request"  # request | save: an update started by saving a file the index covers
    runner: Any = None  # where it runs: the job worker (None), or a kernel's (lenscope.attach)

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
            "trigger": self.trigger,
        }


@dataclass(frozen=True)
class EngineSettings:
    """Where index builds run: ``local`` (the job worker itself) or ``ray`` (a cluster at
    ``address``, or a local one of ``workers`` processes when it is empty)."""

    kind: str = "local"
    address: str = ""
    workers: int = 2


class JobManager:
    def __init__(self, worker: WorkerClient, root: Path, index_dir: Path, *, allow_hidden: bool = False,
                 cancel_grace_s: float = 5.0, engine: EngineSettings = EngineSettings(),
                 update_max_files: int = 0, kernels: KernelModels | None = None) -> None:  # fmt: skip
        self.worker = worker
        self.kernels = kernels
        self.root = root
        self.index_dir = index_dir
        self.allow_hidden = allow_hidden
        self.cancel_grace_s = cancel_grace_s
        self.engine = engine
        self.update_max_files = update_max_files  # indexes of more files are not updated on save; 0: never
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._pending: dict[str, str] = {}  # index -> a file saved while its update ran: updated again after it
        self.loop: asyncio.AbstractEventLoop | None = None

    def _check_paths(self, paths: list[str]) -> list[str]:
        """Every argument is checked before a job is accepted: a job that starts can run."""
        rel = [safe_relative(self.root, p, allow_hidden=self.allow_hidden) for p in paths]
        for p in rel:
            mode = (self.root / p).stat().st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise InvalidInput(f"{p!r} is not a regular file or a folder (a FIFO, socket or device is never read)")
        return rel

    def _runner_for(self, *models: str) -> Any:
        """The job worker, or the kernel holding one of ``models`` (a job of a kernel's model runs there)."""
        attached = self.kernels.attached() if self.kernels is not None else {}
        kernels = {attached[m]["kernel_id"]: m for m in models if m in attached}
        if not kernels:
            return None
        if len(kernels) > 1:
            raise InvalidInput(f"{' and '.join(sorted(kernels.values()))} live in two different kernels: "
                               "a job runs in one; attach both in the same kernel")  # fmt: skip
        assert self.kernels is not None
        return self.kernels.runner(next(iter(kernels.values())))

    def _start(self, kind: str, model: str, op: str, args: dict[str, Any], runner: Any = None) -> Job:
        active = sum(j.state in ("queued", "running") for j in self.jobs.values())
        if active >= self.worker.config.queue_limit:
            raise QueueFull(f"{active} jobs are running (limit {self.worker.config.queue_limit}); retry when one ends")
        job = Job(id=f"job-{next(self._ids)}", kind=kind, model=model, runner=runner)
        self.jobs[job.id] = job
        job.task = asyncio.ensure_future(self._run(job, op, {**args, "root": str(self.root), "allow_hidden": self.allow_hidden}))
        return job

    def start_index_build(self, model: str, paths: list[str], name: str, k: int, sae: str | None = None,
                          trigger: str = "request") -> Job:  # fmt: skip
        rel = self._check_paths(paths)
        args: dict[str, Any] = {"model": model, "paths": rel, "out": str(self.index_dir / name), "k": k,
                                "engine": vars(self.engine)}  # fmt: skip
        if sae:
            args["sae"] = sae
        runner = self._runner_for(model)
        if runner is not None:
            args["engine"] = {"kind": "local"}  # Ray's workers could not load a model that lives in a kernel
        job = self._start("index", model, "build_index", args, runner)
        job.index, job.trigger = name, trigger
        return job

    # -- updates on save -------------------------------------------------------------------
    def post_save_hook(self, os_path: str, **_: Any) -> None:
        """A ``ContentsManager`` post-save hook: may run off the event loop, so it only schedules."""
        if self.update_max_files <= 0:
            return
        try:
            asyncio.get_running_loop().call_soon(self.on_saved, os_path)  # the async contents manager: on the loop
        except RuntimeError:  # a synchronous contents manager's thread
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.on_saved, os_path)

    def on_saved(self, os_path: str) -> list[Job]:
        """Update every workspace index built here whose sources cover the saved file: only the
        shards of the files that changed are run again (``lenscope.index.shards``)."""
        try:
            rel = Path(os_path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return []
        if rel.startswith(".") or "/." in rel:
            return []  # hidden files (lenscope's own outputs among them) are never indexed
        started: list[Job] = []
        for name, m in self._updatable_indexes():
            if not any(src in (".", rel) or rel.startswith(src.rstrip("/") + "/") for src in m["sources"]):
                continue
            if any(j.index == name and j.state in ("queued", "running") for j in self.jobs.values()):
                self._pending[name] = os_path  # one update at a time per index; the next one reads the latest files
                continue
            try:
                sae = (m.get("sae") or {}).get("name")
                job = self.start_index_build(m["model"], m["sources"], name, int(m["k"]), sae, trigger="save")
            except (LenscopeError, OSError) as exc:  # a source removed since, the queue full: the next save retries
                log.info("lenscope: no update of index %s after saving %s: %s", name, rel, getattr(exc, "message", exc))
                continue
            started.append(job)
        return started

    def _updatable_indexes(self) -> list[tuple[str, dict[str, Any]]]:
        from lenscope.index.store import IndexNotFound, open_index

        out: list[tuple[str, dict[str, Any]]] = []
        try:
            folders = sorted(p for p in self.index_dir.iterdir() if not p.name.startswith("."))
        except OSError:
            return out
        for folder in folders:
            try:
                m = open_index(folder).manifest
            except IndexNotFound:
                continue
            if m.get("sources") and m.get("root") == "." and len(m["files"]) <= self.update_max_files:
                out.append((folder.name, m))
        return out

    def _after(self, job: Job) -> None:
        saved = self._pending.pop(job.index, None) if job.index else None
        if saved is not None:
            self.on_saved(saved)

    def start_compare(self, model_a: str, model_b: str, paths: list[str], clamp: float, min_count: int) -> Job:
        rel = self._check_paths(paths)
        args = {"model_a": model_a, "model_b": model_b, "paths": rel, "clamp": clamp, "min_count": min_count}
        return self._start("compare", f"{model_a} vs {model_b}", "compare_corpus", args, self._runner_for(model_a, model_b))

    async def _run(self, job: Job, op: str, args: dict[str, Any]) -> None:
        """Always ends the job in a final state, whatever happens (nothing stays "running")."""
        job.state = "running"

        def on_progress(p: dict[str, Any]) -> None:
            job.progress = p

        def on_sent(rid: int) -> None:
            job.rid = rid

        try:
            job.result = await (job.runner or self.worker).request(op, args, on_progress=on_progress, on_sent=on_sent)
            job.state = "done"
        except LenscopeError as exc:
            job.state = "cancelled" if exc.code == "cancelled" or job.cancel_requested else "failed"
            job.error = {"code": "cancelled" if job.state == "cancelled" else exc.code, "message": exc.message}
        except Exception as exc:  # a bug: the job still ends, and the log has the traceback
            log.exception("lenscope job %s failed", job.id)
            job.state, job.error = "failed", {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}
        finally:
            self._after(job)

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
                await (job.runner or self.worker).cancel(job.rid)
            asyncio.get_running_loop().call_later(self.cancel_grace_s, self._force_cancel, job)
        return job

    def _force_cancel(self, job: Job) -> None:
        if job.state in ("queued", "running"):
            (job.runner or self.worker).kill(f"job {job.id} did not stop within {self.cancel_grace_s:g} s of being cancelled")

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
