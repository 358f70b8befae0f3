"""The ``ExtensionApp``: configuration, the worker's life cycle, and route registration."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, List, Unicode

from lenscope.defaults import INDEXES_DIR
from lenscope.errors import LenscopeError
from lenscope.models.registry import DEFAULT_MODEL
from lenscope_server.cache import LRUCache
from lenscope_server.indexes import IndexRegistry
from lenscope_server.jobs import EngineSettings, JobManager
from lenscope_server.kernel_models import KernelModels
from lenscope_server.service import LenscopeService
from lenscope_server.worker.client import WorkerClient, WorkerConfig


class LenscopeApp(ExtensionApp):
    name = "lenscope"

    default_model = Unicode(DEFAULT_MODEL, help="Model used when a request names none").tag(config=True)
    device = Unicode("", help="Torch device for the worker ('cpu', 'cuda', 'mps', ...); empty: CPU").tag(config=True)
    dtype = Unicode("", help="Load models in this dtype ('float32', 'float16', 'bfloat16', 'float64'); empty: as stored").tag(
        config=True
    )
    cache_size = Int(256, help="Finished analyses kept in memory (LRU), at most").tag(config=True)
    cache_mb = Int(256, help="Memory the cached analyses may take, in MB (one response over a quarter of it is not kept)").tag(
        config=True
    )
    request_timeout_s = Float(120.0, help="Deadline of an analysis request to the worker (504 after it)").tag(config=True)
    heartbeat_timeout_s = Float(20.0, help="A worker silent this long (no heartbeat) is killed and restarted").tag(config=True)
    cancel_grace_s = Float(5.0, help="A cancelled job still running after this long has its worker killed").tag(config=True)
    queue_limit = Int(32, help="Requests waiting for the worker before new ones get 503 + Retry-After").tag(config=True)
    worker_memory_limit_mb = Int(0, help="Worker RSS above which it drops its models, then restarts; 0: no limit").tag(
        config=True
    )
    idle_unload_s = Float(1800.0, help="Unload a model unused for this long (seconds); 0: never").tag(config=True)
    worker_threads = Int(0, help="torch threads in the worker; 0: torch's default").tag(config=True)
    model_dirs = List(Unicode(), help="Folders (relative to the server root) whose sub-folders are models").tag(config=True)
    preload = Bool(True, help="Start the worker and load the default model when the server starts").tag(config=True)
    preload_jobs = Bool(
        True,
        help="With preload: then also start the job worker and load the default model in it (in the background), "
        "so that the first index build or comparison does not wait seconds for a process, torch and the model",
    ).tag(config=True)
    max_body_bytes = Int(4 * 2**20, help="Largest request body accepted").tag(config=True)
    index_engine = Unicode("local", help="Where index builds run: 'local' (the job worker) or 'ray'").tag(config=True)
    ray_address = Unicode("", help="The Ray cluster for index builds (host:port); empty: a local one").tag(config=True)
    ray_workers = Int(2, help="Worker processes of a local Ray cluster (one model each)").tag(config=True)
    update_on_save_max_files = Int(
        2000, help="Saving a file updates the workspace indexes that cover it, for indexes of at most this many files; 0: off"
    ).tag(config=True)

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        root = Path(os.path.expanduser(self.serverapp.root_dir)).resolve()
        dirs = [str((root / d).resolve()) for d in self.model_dirs if (root / d).resolve().is_relative_to(root)]
        self.worker = WorkerClient(
            WorkerConfig(
                device=self.device or None,
                dtype=self.dtype or None,
                memory_limit_mb=self.worker_memory_limit_mb,
                idle_unload_s=self.idle_unload_s,
                model_dirs=dirs,
                preload=self.default_model if self.preload else None,
                threads=self.worker_threads or None,
                queue_limit=self.queue_limit,
                heartbeat_timeout_s=self.heartbeat_timeout_s,
            )
        )
        # follow Jupyter's own rule for hidden files (its contents API hides them unless allowed)
        allow_hidden = bool(getattr(self.serverapp.contents_manager, "allow_hidden", False))
        index_dir = root / INDEXES_DIR
        kernels = KernelModels(self.serverapp.kernel_manager, getattr(self.serverapp, "session_manager", None))
        self.service = LenscopeService(
            self.worker,
            self.default_model,
            LRUCache(self.cache_size, self.cache_mb * 2**20),
            IndexRegistry(index_dir, root, allow_hidden),
            self.request_timeout_s,
            kernels,
        )
        # long jobs get a worker of their own: started after the model worker's preload (preload_jobs), else on the first job
        job_preload = self.default_model if self.preload and self.preload_jobs else None
        job_worker = WorkerClient(replace(self.worker.config, preload=job_preload, queue_limit=8))
        if self.index_engine not in ("local", "ray"):
            raise ValueError(f"LenscopeApp.index_engine must be 'local' or 'ray', not {self.index_engine!r}")
        engine = EngineSettings(self.index_engine, self.ray_address, self.ray_workers)
        self.jobs = JobManager(job_worker, root, index_dir, allow_hidden=allow_hidden, cancel_grace_s=self.cancel_grace_s,
                               engine=engine, update_max_files=self.update_on_save_max_files, kernels=kernels)  # fmt: skip
        contents = self.serverapp.contents_manager
        if hasattr(contents, "register_post_save_hook"):
            contents.register_post_save_hook(self.jobs.post_save_hook)  # type: ignore[no-untyped-call]
        self.settings.update(
            lenscope_service=self.service,
            lenscope_jobs=self.jobs,
            lenscope_max_body_bytes=self.max_body_bytes,
            lenscope_root=root,
        )

    def initialize_handlers(self) -> None:
        from lenscope_server.handlers import route_table

        self.handlers.extend(route_table())

    async def _start_jupyter_server_extension(self, serverapp: object) -> None:  # type: ignore[override]
        self.jobs.loop = asyncio.get_running_loop()
        if self.preload:  # in the background: the server must not wait for torch to import
            self._preload_task = asyncio.ensure_future(self._preload())

    async def _preload(self) -> None:
        try:
            await self.worker.start()
            if self.preload_jobs:
                # one start at a time: the job worker's imports and model load would slow the model worker's
                while self.default_model in self.worker.loading and self.worker.state == "ready":
                    await asyncio.sleep(0.2)
                await self.jobs.worker.start()
        except LenscopeError as exc:
            self.log.warning("lenscope: %s", exc.message)

    async def stop_extension(self) -> None:
        if self.service.kernels is not None:
            self.service.kernels.close()
        await self.worker.stop()
        await self.jobs.stop()
