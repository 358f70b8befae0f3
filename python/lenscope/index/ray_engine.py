"""Index shards computed on Ray: a Ray Data ``map_batches`` over the shards, with one
:class:`ShardReducer` (which loads the model once) per worker process, one GPU each when the
cluster has GPUs.

Each worker runs the same :func:`lenscope.index.reduce.reduce_shard` on the same shards as the
local engine, and the build merges the results exactly, so both engines write the same index,
byte for byte. Results come back as each shard is done (in any order) and are stored by the
build at once: a build that dies part-way resumes from them.

``address`` names a running cluster (``ray start --head`` prints it); without one, a local
cluster of ``workers`` processes is started in this process's session, on loopback only.
"""

from __future__ import annotations

import functools
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lenscope.errors import EngineUnavailable, LenscopeError
from lenscope.index.engines import Done, ReduceSettings, ShardTask
from lenscope.index.reduce import Encode, IndexCancelled
from lenscope.index.shards import ShardResult

CONNECT_TIMEOUT_S = 3.0


def load_units(
    model_name: str, model_dirs: tuple[str, ...], device: str | None, sae_name: str | None, dtype: str | None = None
) -> tuple[Any, list[str], Encode]:
    """The model and the hooks and encoding of its units, as a build's own process has them."""
    from lenscope.index.reduce import units_of
    from lenscope.models.registry import load_model
    from lenscope.models.sae_registry import load_named_sae

    dirs = tuple(Path(d) for d in model_dirs)
    model = load_model(model_name, device=device, model_dirs=dirs, allow_paths=False, dtype=dtype)
    sae = None
    if sae_name:
        sae = load_named_sae(sae_name, dirs)
        sae = sae.to(device) if device else sae
    hooks, encode = units_of(model, sae)
    return model, hooks, encode


class ShardReducer:
    """One per Ray worker: loads the model once, then reduces one shard per call."""

    def __init__(self, load: Callable[[], tuple[Any, list[str], Encode]], settings: ReduceSettings, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.model, self.hooks, self.encode = load()
        self.settings = settings

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from lenscope.index.reduce import reduce_shard

        s = self.settings
        r = reduce_shard(self.model, self.hooks, self.encode, np.asarray(batch["x"][0]), np.asarray(batch["lengths"][0]),
                         k=s.k, before=s.before, after=s.after, batch_windows=s.batch_windows)  # fmt: skip
        return {"i": batch["i"], **{name: a[None] for name, a in r.arrays().items()}}


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes, when nothing listens at ``host:port``."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise EngineUnavailable(f"Ray address {address!r} is not host:port (ray start --head prints the address to use)")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise EngineUnavailable(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; start one with `ray start --head` "
            "or build with the local engine"
        ) from None


@dataclass
class RayEngine:
    """``load`` is picklable (a module-level function with its arguments bound: see
    :func:`ray_engine_for`) and runs in each worker."""

    load: Callable[[], tuple[Any, list[str], Encode]]
    address: str | None = None
    workers: int = 2
    threads_per_worker: int = 1
    name: str = "ray"
    info: dict[str, Any] = field(default_factory=dict)

    def _init(self) -> Any:
        try:
            import ray
        except ImportError:
            raise EngineUnavailable("Ray is not installed here: pip install 'lenscope[ray]', or use the local engine") from None
        if ray.is_initialized():
            return ray
        if self.address:
            _check_reachable(self.address)
            try:
                ray.init(address=self.address, logging_level=logging.ERROR, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise EngineUnavailable(f"cannot join the Ray cluster at {self.address}: {exc}") from None
        else:  # a local cluster: this machine only, no dashboard
            ray.init(num_cpus=self.workers * self.threads_per_worker, include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False, _node_ip_address="127.0.0.1")  # fmt: skip
        return ray

    def run(self, tasks: list[ShardTask], settings: ReduceSettings, on_done: Done,
            on_tokens: Callable[[int], None], cancelled: Callable[[], bool] | None) -> None:  # fmt: skip
        ray = self._init()
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False  # the build reports progress itself
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        gpus = ray.cluster_resources().get("GPU", 0)
        rows = [{"i": i, "x": t.read(), "lengths": t.lengths} for i, t in enumerate(tasks)]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            ShardReducer,
            fn_constructor_kwargs={"load": self.load, "settings": settings, "threads": self.threads_per_worker},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=self.threads_per_worker,
            num_gpus=1 if gpus else 0,
        )
        started = time.monotonic()
        first: float | None = None
        try:
            for row in ds.iter_rows():
                first = first if first is not None else time.monotonic() - started  # workers started, model loaded
                if cancelled and cancelled():
                    raise IndexCancelled("the index build was cancelled")
                task = tasks[int(row["i"])]
                result = ShardResult(**{f: np.asarray(row[f]) for f in ShardResult.FIELDS}, count=int(row["count"]))
                on_done(task, result)
                on_tokens(result.count)
        except LenscopeError:  # cancelled, or a shard could not be stored: the build's own errors
            raise
        except Exception as exc:  # a worker died and its retries ran out, the cluster went away, ...
            first_line = (str(exc).splitlines() or [""])[0][:300]
            raise EngineUnavailable(f"the Ray build failed: {type(exc).__name__}: {first_line}") from None
        self.info = {"workers": self.workers, "gpus": gpus, "seconds": time.monotonic() - started, "first_shard_s": first}


def ray_engine_for(model_name: str, *, model_dirs: tuple[Path, ...] = (), device: str | None = None,
                   dtype: str | None = None, sae_name: str | None = None, address: str | None = None,
                   workers: int = 2) -> RayEngine:  # fmt: skip
    load = functools.partial(load_units, model_name, tuple(str(d) for d in model_dirs), device, sae_name, dtype)
    return RayEngine(load, address=address, workers=workers)
