"""What the routes do, apart from HTTP: validate, cache, coalesce, and ask the worker.

Identical concurrent requests share one computation; finished ones are served from an LRU.
Nothing here imports torch: the worker does the work.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from lenscope.errors import LenscopeError
from lenscope.index.card import neuron_card, neuron_row, neurons_for_description, neurons_for_token, stored_document
from lenscope.validation import MAX_CONTEXT_CHARS, check_text
from lenscope.wire import ActivationsRequest, AnalyzeRequest, AttentionRequest, AttributeRequest, LogitLensRequest, PatchRequest
from lenscope_server.cache import LRUCache
from lenscope_server.errors import relative_to_root
from lenscope_server.indexes import IndexRegistry
from lenscope_server.kernel_models import KernelModels
from lenscope_server.worker.client import WorkerClient

AnalyzeKey = tuple[str, str, str, int, int, str, str, str, int]  # ..., encoding, interventions (JSON), sae, top_features


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
        self._inflight: dict[AnalyzeKey, asyncio.Future[bytes]] = {}

    async def analyze(self, request: AnalyzeRequest, encoding: str) -> Served:
        """The analysis encoded by the worker (msgpack or JSON), shared with identical requests.

        The worker encodes, so a large JSON response never holds up the server's event loop.
        """
        t0 = time.perf_counter()
        check_text(request.text)
        check_text(request.context, "context", allow_empty=True, limit=MAX_CONTEXT_CHARS)
        model = request.model or self.default_model
        interventions = json.dumps([iv.model_dump() for iv in request.interventions], sort_keys=True)
        key: AnalyzeKey = (
            model, request.text, request.context, request.top_k, request.top_neurons, encoding, interventions,
            request.sae or "", request.top_features if request.sae else 0,
        )  # fmt: skip
        live = self._in_kernel(model)  # weights that can change between two calls: never served from the cache
        body = None if live else self.cache.get(key)
        source, worker_ms = "cache", None
        if body is None:
            shared = self._inflight.get(key)
            if shared is not None:
                source = "coalesced"
                body = await asyncio.shield(shared)
            else:
                source = "worker"
                t1 = time.perf_counter()
                body = await self._compute(key)
                worker_ms = (time.perf_counter() - t1) * 1000
        return Served(body, encoding, source, (time.perf_counter() - t0) * 1000, worker_ms)

    async def _compute(self, key: AnalyzeKey) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        model, text, context, top_k, top_neurons, encoding, interventions, sae, top_features = key
        try:
            args: dict[str, Any] = {"model": model, "text": text, "context": context, "top_k": top_k, "top_neurons": top_neurons}
            if sae:
                args |= {"sae": sae, "top_features": top_features}
            if interventions != "[]":
                changes = json.loads(interventions)
                args |= {"interventions": changes, "neuron_means": self._index_means(model, changes)}
            result = await self._tracked(model, "analyze", {**args, "encoding": encoding})
            payload: bytes = result["payload"]
            if not self._in_kernel(model):
                self.cache.put(key, payload)
            future.set_result(payload)
            return payload
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: there may be no other waiter
            raise
        finally:
            self._inflight.pop(key, None)

    def _index_means(self, model: str, interventions: list[dict[str, Any]]) -> list[list[float]]:
        """``[layer, index, mean]`` of each mean-ablated neuron from the model's index, if it has one
        (mean ablation then uses the workspace's statistics; without one, the worker's selection mean)."""
        wanted = [(iv["layer"], iv["index"]) for iv in interventions if iv["component"] == "neuron" and iv["op"] == "mean"]
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

    async def activations(self, request: ActivationsRequest, encoding: str) -> Served:
        """Neuron activations on a text (not cached: cheap, and the neuron set varies)."""
        t0 = time.perf_counter()
        check_text(request.text)
        check_text(request.context, "context", allow_empty=True, limit=MAX_CONTEXT_CHARS)
        model = request.model or self.default_model
        neurons = [n.model_dump() for n in request.neurons]
        args = {"model": model, "text": request.text, "context": request.context, "neurons": neurons, "encoding": encoding}
        result = await self._tracked(model, "activations", args)
        total = (time.perf_counter() - t0) * 1000
        return Served(result["payload"], encoding, "worker", total, total)

    async def attribute(self, request: AttributeRequest, encoding: str) -> Served:
        """Direct logit attribution of one prediction (not cached: one position, cheap)."""
        t0 = time.perf_counter()
        check_text(request.text)
        model = request.model or self.default_model
        args = {**request.model_dump(), "model": model, "encoding": encoding}
        result = await self._tracked(model, "attribute", args)
        total = (time.perf_counter() - t0) * 1000
        return Served(result["payload"], encoding, "worker", total, total)

    async def attention(self, request: AttentionRequest, encoding: str) -> Served:
        """Where each head attends on a text (not cached: the worker bounds it, and it is one pass)."""
        t0 = time.perf_counter()
        check_text(request.text)
        check_text(request.context, "context", allow_empty=True, limit=MAX_CONTEXT_CHARS)
        model = request.model or self.default_model
        args = {**request.model_dump(), "model": model, "encoding": encoding}
        result = await self._tracked(model, "attention", args)
        total = (time.perf_counter() - t0) * 1000
        return Served(result["payload"], encoding, "worker", total, total)

    async def logit_lens(self, request: LogitLensRequest, encoding: str) -> Served:
        """The logit lens at some tokens (not cached: the client caches by position, and one
        position costs one window's forward)."""
        t0 = time.perf_counter()
        check_text(request.text)
        check_text(request.context, "context", allow_empty=True, limit=MAX_CONTEXT_CHARS)
        model = request.model or self.default_model
        args = {**request.model_dump(), "model": model, "encoding": encoding}
        result = await self._tracked(model, "logit_lens", args)
        total = (time.perf_counter() - t0) * 1000
        return Served(result["payload"], encoding, "worker", total, total)

    async def patch(self, request: PatchRequest, encoding: str) -> Served:
        """Activation patching over two texts (not cached: the two texts are rarely asked twice)."""
        t0 = time.perf_counter()
        model = request.model or self.default_model
        result = await self._tracked(model, "patch", {**request.model_dump(), "model": model, "encoding": encoding})
        total = (time.perf_counter() - t0) * 1000
        return Served(result["payload"], encoding, "worker", total, total)

    async def head_card(self, model: str, layer: int, head: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._tracked(model, "head_card", {"model": model, "layer": layer, "head": head})
        return result

    async def neuron_inputs(self, model: str, layer: int, index: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._tracked(model, "neuron_inputs", {"model": model, "layer": layer, "index": index})
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

    def neuron_card(self, model: str, layer: int, neuron: int, sae: str | None = None) -> dict[str, Any]:
        """A neuron's card from its model's index, or with ``sae`` a feature's from that SAE's
        feature index (no worker: a few memory-mapped rows)."""
        t0 = time.perf_counter()
        index = self.indexes.for_model(model, sae=sae)
        card = neuron_card(index, layer, neuron, self.indexes.availability(index))
        if sae is not None:
            card["sae"] = sae
        card["timings_ms"] = {"lookup": round((time.perf_counter() - t0) * 1000, 3)}
        return card

    def neuron_search(self, model: str, token: str, by: str = "token") -> dict[str, Any]:
        index = self.indexes.for_model(model)
        found = neurons_for_description(index, token) if by == "description" else neurons_for_token(index, token)
        return {"model": model, "token": token, "by": by, "neurons": found}

    def feature_search(self, model: str, sae: str, token: str) -> dict[str, Any]:
        return {"model": model, "token": token, "neurons": neurons_for_token(self.indexes.for_model(model, sae=sae), token)}

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
