"""What the routes do, apart from HTTP: validate, cache, coalesce, and ask the worker.

Identical concurrent requests share one computation; finished ones are served from an LRU.
Nothing here imports torch: the worker does the work.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgpack

from lenscope.index.card import neuron_card, neurons_for_token
from lenscope.validation import MAX_CONTEXT_CHARS, MAX_TOP_NEURONS, check_int, check_text
from lenscope.wire import ActivationsRequest, AnalyzeRequest
from lenscope_server.cache import LRUCache
from lenscope_server.indexes import IndexRegistry
from lenscope_server.worker.client import WorkerClient

AnalyzeKey = tuple[str, str, str, int, int]


class LenscopeService:
    def __init__(self, worker: WorkerClient, default_model: str, cache_size: int, indexes: IndexRegistry) -> None:
        self.worker = worker
        self.indexes = indexes
        self.default_model = default_model
        self.cache = LRUCache(cache_size)
        self._inflight: dict[AnalyzeKey, asyncio.Future[bytes]] = {}

    async def analyze(self, request: AnalyzeRequest) -> dict[str, Any]:
        """The analysis as a msgpack-decoded wire dict (arrays still as bytes), server timings added.

        ``timings_ms`` gains ``server_total`` and, when this request ran the worker,
        ``worker_roundtrip`` (pipe + queue + compute: minus the worker's own parts, the transport).
        """
        t0 = time.perf_counter()
        check_text(request.text)
        check_text(request.context, "context", allow_empty=True, limit=MAX_CONTEXT_CHARS)
        check_int(request.top_k, "top_k", 1, 2**31 - 1)  # the upper bound needs the model: the worker checks it
        check_int(request.top_neurons, "top_neurons", 0, MAX_TOP_NEURONS)
        model = request.model or self.default_model
        key: AnalyzeKey = (model, request.text, request.context, request.top_k, request.top_neurons)
        cached = self.cache.get(key)
        source = "cache"
        timings: dict[str, float] = {}
        if cached is None:
            shared = self._inflight.get(key)
            if shared is not None:
                source = "coalesced"
                cached = await asyncio.shield(shared)
            else:
                source = "worker"
                t1 = time.perf_counter()
                cached = await self._compute(key)
                timings["worker_roundtrip"] = (time.perf_counter() - t1) * 1000
        payload: dict[str, Any] = msgpack.unpackb(cached, raw=False)
        timings["server_total"] = (time.perf_counter() - t0) * 1000
        payload["timings_ms"] = {**payload["timings_ms"], **{k: round(v, 3) for k, v in timings.items()}}
        payload["served_from"] = source
        return payload

    async def _compute(self, key: AnalyzeKey) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        model, text, context, top_k, top_neurons = key
        try:
            args = {"model": model, "text": text, "context": context, "top_k": top_k, "top_neurons": top_neurons}
            result = await self._tracked(model, "analyze", args)
            payload: bytes = result["payload"]
            self.cache.put(key, payload)
            future.set_result(payload)
            return payload
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: there may be no other waiter
            raise
        finally:
            self._inflight.pop(key, None)

    async def activations(self, request: ActivationsRequest) -> dict[str, Any]:
        """Neuron activations on a text (not cached: cheap, and the neuron set varies)."""
        t0 = time.perf_counter()
        check_text(request.text)
        check_text(request.context, "context", allow_empty=True, limit=MAX_CONTEXT_CHARS)
        model = request.model or self.default_model
        neurons = [n.model_dump() for n in request.neurons]
        result = await self._tracked(
            model, "activations", {"model": model, "text": request.text, "context": request.context, "neurons": neurons}
        )
        payload: dict[str, Any] = msgpack.unpackb(result["payload"], raw=False)
        payload["timings_ms"]["server_total"] = round((time.perf_counter() - t0) * 1000, 3)
        return payload

    async def _tracked(self, model: str, op: str, args: dict[str, Any]) -> Any:
        """A worker request that shows ``model`` as loading until it is loaded."""
        loading = model not in self.worker.loaded
        if loading:
            self.worker.loading.add(model)
        try:
            return await self.worker.request(op, args)
        finally:
            if loading:
                self.worker.loading.discard(model)

    def neuron_card(self, model: str, layer: int, neuron: int) -> dict[str, Any]:
        """A neuron's card from its model's index (no worker: a few memory-mapped rows)."""
        t0 = time.perf_counter()
        card = neuron_card(self.indexes.for_model(model), layer, neuron)
        card["timings_ms"] = {"lookup": round((time.perf_counter() - t0) * 1000, 3)}
        return card

    def neuron_search(self, model: str, token: str) -> dict[str, Any]:
        return {"model": model, "token": token, "neurons": neurons_for_token(self.indexes.for_model(model), token)}

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
            entries.append({**entry, "state": state, "default": m["name"] == self.default_model})
        return {"default": self.default_model, "models": entries}

    def health(self) -> dict[str, Any]:
        w, c = self.worker, self.cache
        return {
            "worker": {"state": w.state, "pid": w.pid, "restarts": w.restarts, "last_exit": w.last_exit},
            "models": {"loaded": sorted(w.loaded), "loading": sorted(w.loading)},
            "queue": {"depth": w.queue_depth, "limit": w.config.queue_limit},
            "cache": {
                "size": len(c),
                "capacity": c.capacity,
                "hits": c.hits,
                "misses": c.misses,
                "hit_rate": round(c.hit_rate, 4),
            },
        }
