"""What the routes do, apart from HTTP: validate, cache, coalesce, and ask the worker.

Every text operation goes through :meth:`LenscopeService.run` (the operations are declared in
:mod:`lenscope.operations`). Identical concurrent requests share one computation; finished ones
are served from an LRU.
Nothing here imports torch: the worker does the work.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from lenscope.errors import LenscopeError
from lenscope.index.card import neuron_card, neuron_row, neurons_for_description, neurons_for_token, stored_document
from lenscope.operations import Operation
from lenscope.validation import MAX_CONTEXT_CHARS, check_text
from lenscope_server.cache import LRUCache
from lenscope_server.errors import relative_to_root
from lenscope_server.indexes import IndexRegistry
from lenscope_server.kernel_models import KernelModels
from lenscope_server.worker.client import WorkerClient

CacheKey = tuple[str, str, str, str]  # operation, model, encoding, arguments (JSON, sorted keys)


@dataclass
class _Shared:
    """One computation, awaited by every identical request that arrived while it ran."""

    task: asyncio.Future[bytes]
    waiters: int = 0
    worker_ms: float | None = None


@dataclass
class Served:
    """A response body as the worker encoded it, and how this request got it."""

    body: bytes
    encoding: str  # "msgpack" | "json"
    source: str  # "worker" | "coalesced" | "cache"
    total_ms: float
    worker_ms: float | None = None

    def server_timing(self) -> str:
        """The ``Server-Timing`` header: the body is never re-encoded to add these."""
        parts = [f"total;dur={self.total_ms:.3f}"]
        if self.worker_ms is not None:
            parts.append(f"worker;dur={self.worker_ms:.3f}")
        parts.append(f'source;desc="{self.source}"')
        return ", ".join(parts)


class LenscopeService:
    def __init__(
        self,
        worker: WorkerClient,
        default_model: str,
        cache: LRUCache,
        indexes: IndexRegistry,
        request_timeout_s: float,
        kernels: KernelModels | None = None,
    ) -> None:
        self.worker = worker
        self.kernels = kernels  # models attached in notebook kernels (lenscope.attach)
        self.indexes = indexes
        self.default_model = default_model
        self.cache = cache
        self.request_timeout_s = request_timeout_s
        self._inflight: dict[CacheKey, _Shared] = {}

    async def run(self, op: Operation, request: BaseModel, encoding: str) -> Served:
        """Any text operation (:data:`lenscope.operations.OPERATIONS`), encoded by the worker (msgpack
        or JSON) and sent as it is: the worker encodes, so a large JSON response never holds up the
        server's event loop.

        With ``op.cache == "lru"``, identical concurrent requests share one computation and the
        response is kept in the LRU (not for a model attached in a kernel: its weights can change
        between two calls). A computation nobody waits for any more is cancelled: a request
        still queued for the worker gives its slot back.
        """
        t0 = time.perf_counter()
        model, args = op.arguments(request)
        if "text" in args and "token_ids" not in args:  # with token ids the text is empty (the ids are checked where they run)
            check_text(args["text"])
        if "context" in args:
            check_text(args["context"], "context", allow_empty=True, limit=MAX_CONTEXT_CHARS)
        model = model or self.default_model
        if op.cache == "none":
            fresh = await self._compute(op, model, args, encoding)
            total = (time.perf_counter() - t0) * 1000
            return Served(fresh, encoding, "worker", total, total)
        key: CacheKey = (op.name, model, encoding, json.dumps(args, sort_keys=True))
        body = None if self._in_kernel(model) else self.cache.get(key)
        if body is not None:
            return Served(body, encoding, "cache", (time.perf_counter() - t0) * 1000)
        shared = self._inflight.get(key)
        source = "coalesced" if shared is not None else "worker"
        if shared is None:
            shared = self._inflight[key] = _Shared(asyncio.ensure_future(self._compute(op, model, args, encoding, key)))
        shared.waiters += 1
        try:
            body = await asyncio.shield(shared.task)
        finally:
            shared.waiters -= 1
            if not shared.waiters and not shared.task.done():  # every client went away
                shared.task.cancel()
                if self._inflight.get(key) is shared:
                    del self._inflight[key]
        worker_ms = shared.worker_ms if source == "worker" else None
        return Served(body, encoding, source, (time.perf_counter() - t0) * 1000, worker_ms)

    async def _compute(self, op: Operation, model: str, args: dict[str, Any], encoding: str,
                       key: CacheKey | None = None) -> bytes:  # fmt: skip
        """Ask the worker (or the kernel holding ``model``); with ``key``, cache and share the answer."""
        t0 = time.perf_counter()
        try:
            sent = {**args, "model": model, "encoding": encoding}
            if args.get("interventions"):
                sent["neuron_means"] = self._index_means(model, args["interventions"])
            result = await self._tracked(model, op.name, sent)
            payload: bytes = result["payload"]
            if key is not None and not self._in_kernel(model):
                self.cache.put(key, payload)
            return payload
        finally:
            if key is not None:
                shared = self._inflight.get(key)
                if shared is not None and shared.task is asyncio.current_task():
                    shared.worker_ms = (time.perf_counter() - t0) * 1000
                    del self._inflight[key]

    def _index_means(self, model: str, interventions: list[dict[str, Any]]) -> list[list[float]]:
        """``[layer, index, mean]`` of each mean-ablated neuron from the model's index, if it has one
        (mean ablation then uses the workspace's statistics; without one, the worker's selection mean)."""
        wanted = [(iv["layer"], iv["index"]) for iv in interventions
                  if iv["component"] == "neuron" and iv["op"] == "mean" and iv.get("layer") is not None]  # fmt: skip
        if not wanted:
            return []
        try:
            index = self.indexes.for_model(model)
        except LenscopeError:
            return []
        out = []
        for layer, neuron in wanted:
            try:
                out.append([layer, neuron, float(index.arrays["mean"][neuron_row(index, layer, neuron)])])
            except LenscopeError:  # not a neuron of the index: the worker names the problem against the model
                continue
        return out

    async def head_scores(self, model: str, length: int, seed: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._tracked(model, "head_scores", {"model": model, "length": length, "seed": seed})
        return result

    async def head_card(self, model: str, layer: int, head: int, vocab: str = "frequent", source: str | None = None,
                        query: str | None = None) -> dict[str, Any]:  # fmt: skip
        args = {"model": model, "layer": layer, "head": head, "vocab": vocab, "source": source, "query": query}
        result: dict[str, Any] = await self._tracked(model, "head_card", args)
        return result

    async def neuron_inputs(self, model: str, layer: int, index: int, vocab: str = "frequent") -> dict[str, Any]:
        args = {"model": model, "layer": layer, "index": index, "vocab": vocab}
        result: dict[str, Any] = await self._tracked(model, "neuron_inputs", args)
        return result

    async def _tracked(self, model: str, op: str, args: dict[str, Any]) -> Any:
        """A worker request that shows ``model`` as loading until it is loaded.

        Loading has no deadline (a large model may take minutes; the heartbeat still catches
        a hung worker): the request's deadline covers the work itself.
        """
        if self.kernels is not None:
            if model in self.kernels.attached():
                return await self.kernels.request(model, op, args, self.request_timeout_s)
            self.kernels.check_gone(model)
        if model not in self.worker.loaded:
            self.worker.loading.add(model)
            try:
                await self.worker.request("load", {"model": model})
            finally:
                self.worker.loading.discard(model)
        return await self.worker.request(op, args, timeout_s=self.request_timeout_s)

    def _in_kernel(self, model: str) -> bool:
        return self.kernels is not None and model in self.kernels.attached()

    def neuron_card(
        self, model: str, layer: int, neuron: int, sae: str | None = None, index_name: str | None = None
    ) -> dict[str, Any]:
        """A neuron's card from its model's index (``index_name``, else the one with the most
        tokens), or with ``sae`` a feature's from that SAE's feature index (no worker: a few
        memory-mapped rows)."""
        t0 = time.perf_counter()
        index = self.indexes.for_model(model, sae=sae, name=index_name)
        card = neuron_card(index, layer, neuron, self.indexes.availability(index))
        if sae is not None:
            card["sae"] = sae
        card["timings_ms"] = {"lookup": round((time.perf_counter() - t0) * 1000, 3)}
        return card

    def neuron_search(
        self, model: str, token: str, by: str = "token", index_name: str | None = None, sae: str | None = None
    ) -> dict[str, Any]:
        """Neurons (with ``sae``: that SAE's features) by token or by description words."""
        index = self.indexes.for_model(model, sae=sae, name=index_name)
        found = neurons_for_description(index, token) if by == "description" else neurons_for_token(index, token)
        return {"model": model, "token": token, "by": by, "index": index.path.name, "neurons": found}

    def feature_search(
        self, model: str, sae: str, token: str, by: str = "token", index_name: str | None = None
    ) -> dict[str, Any]:
        return self.neuron_search(model, token, by, index_name, sae=sae)

    def index_document(self, name: str, path: str, cell: int | None) -> dict[str, Any]:
        return {"index": name, **stored_document(self.indexes.by_name(name), path, cell)}

    async def models(self) -> dict[str, Any]:
        result = await self.worker.request("models")
        loaded = set(result["loaded"])
        entries = []
        for m in result["models"]:
            if m["name"] in loaded:
                state = "loaded"
            elif m["name"] in self.worker.loading:
                state = "loading"
            else:
                state = "unloaded" if m["loadable"] else "unavailable"
            entry = {k: v for k, v in m.items() if k != "path"}  # server paths stay on the server
            entry["reason"] = relative_to_root(entry["reason"], self.indexes.root)
            entries.append({**entry, "state": state, "default": m["name"] == self.default_model, "kernel": None})
        saes = [
            {**{k: v for k, v in s.items() if k != "path"}, "reason": relative_to_root(s["reason"], self.indexes.root)}
            for s in result.get("saes", [])
        ]
        if self.kernels is not None:
            taken = {e["name"] for e in entries}
            for name, found in self.kernels.attached().items():
                notebook = await self.kernels.notebook_of(found["kernel_id"])
                clash = name in taken
                entries.append({
                    "name": name, "source": "kernel", "loadable": not clash, "state": "unavailable" if clash else "loaded",
                    "reason": f"{name!r} is also one of this server's models: attach it under another name" if clash else "",
                    "default": False, "shape": found["shape"], "repo": None, "aliases": [],
                    "kernel": {"id": found["kernel_id"], "notebook": notebook},
                })  # fmt: skip
        return {"default": self.default_model, "models": entries, "saes": saes}

    def health(self) -> dict[str, Any]:
        w, c = self.worker, self.cache
        return {
            "worker": w.health(),
            "models": {"loaded": sorted(w.loaded), "loading": sorted(w.loading)},
            "queue": {"depth": w.queue_depth, "limit": w.config.queue_limit},
            "cache": {
                "size": len(c),
                "capacity": c.capacity,
                "bytes": c.bytes,
                "max_bytes": c.max_bytes,
                "hits": c.hits,
                "misses": c.misses,
                "hit_rate": round(c.hit_rate, 4),
            },
        }
