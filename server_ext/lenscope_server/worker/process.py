"""The model worker process: owns the models, runs one op at a time, off the server's loop.

Run as ``python -m lenscope_server.worker.process`` by :mod:`lenscope_server.worker.client`.
A reader thread takes frames from stdin: ``cancel`` frames set the op's cancel event at once;
everything else is queued for the main thread, which runs ops in order. Long ops get
``progress`` and ``cancelled`` callbacks (index builds and scans of later issues use them).
The text operations (analyze, attention, ...) are not written here: every entry of
:data:`lenscope.operations.OPERATIONS` runs through :meth:`Worker.run_operation`, under its name.
A request cancelled while it still waits in the inbox is answered ``cancelled`` without running.
Only the core library is imported here, never jupyter_server.
"""

from __future__ import annotations

import gc
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from lenscope.native_memory import keep_heap, release_freed_memory
from lenscope_server.worker.protocol import pack_frame, read_frame

if TYPE_CHECKING:
    from lenscope.operations import Operation


class Worker:
    def __init__(self, out: BinaryIO, device: str | None, memory_limit_mb: int, idle_unload_s: float, model_dirs: list[str],
                 dtype: str | None = None):  # fmt: skip
        self.out = out
        self.device = device
        self.dtype = dtype
        self.memory_limit_mb = memory_limit_mb
        self.idle_unload_s = idle_unload_s
        self.model_dirs = tuple(Path(d) for d in model_dirs)
        self.models: dict[str, Any] = {}
        self.saes: dict[str, Any] = {}  # name -> SparseAutoencoder, on the worker's device
        self.last_used: dict[str, float] = {}
        self.cancel_events: dict[int, threading.Event] = {}
        self.write_lock = threading.Lock()
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()

    # -- transport -------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        frame = pack_frame(message)
        with self.write_lock:
            self.out.write(frame)
            self.out.flush()

    def read_loop(self, stream: BinaryIO) -> None:
        while (message := read_frame(stream)) is not None:
            if message.get("op") == "cancel":
                event = self.cancel_events.get(message["id"])
                if event:
                    event.set()
                continue
            self.cancel_events[message["id"]] = threading.Event()
            self.inbox.put(message)
        self.inbox.put(None)  # the server went away: exit

    # -- models ----------------------------------------------------------------------------
    def model(self, name: str) -> Any:
        if name not in self.models:
            from lenscope.models.registry import load_model

            self.models[name] = load_model(name, device=self.device, model_dirs=self.model_dirs, allow_paths=False,
                                           dtype=self.dtype)  # fmt: skip
            gc.freeze()  # the model's objects live long: keep them out of every later collection
        self.last_used[name] = time.monotonic()
        return self.models[name]

    def sae(self, name: str) -> Any:
        if name not in self.saes:
            from lenscope.models.sae_registry import load_named_sae

            sae = load_named_sae(name, self.model_dirs)
            self.saes[name] = sae.to(self.device) if self.device else sae
        return self.saes[name]

    def unload(self, names: list[str]) -> None:
        if not names:
            return  # a full gc.collect() costs ~150 ms with torch and transformers loaded
        for name in names:
            self.models.pop(name, None)
            self.last_used.pop(name, None)
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def unload_idle(self) -> None:
        if self.idle_unload_s > 0:
            now = time.monotonic()
            self.unload([n for n, t in self.last_used.items() if now - t > self.idle_unload_s])

    def idle(self) -> None:
        """Nothing asked for a while: unload idle models and give the heap kept for speed back."""
        self.unload_idle()
        release_freed_memory()

    def check_memory(self) -> None:
        """Over the limit: give the kept heap back, then drop every model; still over: exit,
        and the server starts a fresh worker."""
        if self.memory_limit_mb <= 0 or rss_mb() <= self.memory_limit_mb:
            return
        release_freed_memory()
        if rss_mb() > self.memory_limit_mb:
            self.unload(list(self.models))
            release_freed_memory()
            if rss_mb() > self.memory_limit_mb:
                sys.stderr.write(f"lenscope worker: {rss_mb():.0f} MB > limit {self.memory_limit_mb} MB, exiting\n")
                os._exit(3)

    # -- ops -------------------------------------------------------------------------------
    def op_ping(self, args: dict[str, Any], progress: Callable[[dict[str, Any]], None], cancelled: threading.Event) -> Any:
        return {"pid": os.getpid(), "loaded": sorted(self.models)}

    def op_models(self, args: dict[str, Any], progress: Callable[[dict[str, Any]], None], cancelled: threading.Event) -> Any:
        from lenscope.models.registry import list_models
        from lenscope.models.sae_registry import list_saes

        return {
            "models": [asdict(m) for m in list_models(self.model_dirs)],
            "saes": [asdict(s) for s in list_saes(self.model_dirs)],
            "loaded": sorted(self.models),
        }

    def op_load(self, args: dict[str, Any], progress: Callable[[dict[str, Any]], None], cancelled: threading.Event) -> Any:
        self.model(args["model"])
        return {"loaded": sorted(self.models)}

    def op_unload(self, args: dict[str, Any], progress: Callable[[dict[str, Any]], None], cancelled: threading.Event) -> Any:
        self.unload(list(args.get("models") or self.models))
        return {"loaded": sorted(self.models)}

    def run_operation(self, operation: Operation, args: dict[str, Any]) -> Any:
        """Any text operation of :data:`lenscope.operations.OPERATIONS`, its response encoded here."""
        from lenscope.operations import execute

        wire = execute(operation, self.model(args["model"]), args, self.sae)
        return {"payload": encode(wire, args.get("encoding")), "loaded": sorted(self.models)}

    def find_op(self, name: str) -> Callable[[dict[str, Any], Callable[[dict[str, Any]], None], threading.Event], Any] | None:
        """The op called ``name``: a method ``op_{name}``, or a text operation of the table."""
        from lenscope.operations import BY_NAME

        method = getattr(self, f"op_{name}", None)
        if method is not None:
            return method  # type: ignore[no-any-return]
        operation = BY_NAME.get(name)
        if operation is None:
            return None
        return lambda args, progress, cancelled: self.run_operation(operation, args)

    def op_head_scores(self, args: dict[str, Any], progress: Callable[[dict[str, Any]], None], cancelled: threading.Event) -> Any:
        from lenscope.headscores import probe_wire

        return probe_wire(self.model(args["model"]), args["model"], args["length"], args["seed"])

    def op_head_card(self, args: dict[str, Any], progress: Callable[[dict[str, Any]], None], cancelled: threading.Event) -> Any:
        from lenscope.circuits import head_card_wire, plain_arrays

        card = head_card_wire(self.model(args["model"]), args["model"], args["layer"], args["head"],
                              vocab=args.get("vocab", "frequent"), source=args.get("source"),
                              query=args.get("query"))  # fmt: skip
        return plain_arrays(card)

    def op_neuron_inputs(
        self, args: dict[str, Any], progress: Callable[[dict[str, Any]], None], cancelled: threading.Event
    ) -> Any:
        from lenscope.circuits import neuron_inputs_wire

        return neuron_inputs_wire(self.model(args["model"]), args["model"], args["layer"], args["index"],
                                  vocab=args.get("vocab", "frequent"))  # fmt: skip

    def op_build_index(self, args: dict[str, Any], progress: Callable[[dict[str, Any]], None], cancelled: threading.Event) -> Any:
        """A neuron index over files under ``root``, written atomically to ``out``."""
        from lenscope.workspace import build_index_over, read_corpus

        corpus = read_corpus(Path(args["root"]), args["paths"], allow_hidden=bool(args.get("allow_hidden")))
        engine = None
        settings = args.get("engine") or {}
        if settings.get("kind") == "ray":
            from lenscope.index.ray_engine import ray_engine_for

            engine = ray_engine_for(args["model"], model_dirs=self.model_dirs, device=self.device, dtype=self.dtype,
                                    sae_name=args.get("sae"), address=settings.get("address") or None,
                                    workers=int(settings.get("workers") or 2))  # fmt: skip
        return build_index_over(
            lambda: self.model(args["model"]),
            args["model"],
            corpus,
            Path(args["out"]),
            k=int(args["k"]),
            progress=progress,
            cancelled=cancelled.is_set,
            sae=self.sae(args["sae"]) if args.get("sae") else None,
            engine=engine,
        )

    def op_compare_corpus(
        self, args: dict[str, Any], progress: Callable[[dict[str, Any]], None], cancelled: threading.Event
    ) -> Any:
        """Both models over files under ``root``: the job result (top rows, groups, export links)."""
        from lenscope.defaults import EXPORTS_DIR
        from lenscope.workspace import compare_over, read_corpus

        corpus = read_corpus(Path(args["root"]), args["paths"], allow_hidden=bool(args.get("allow_hidden")))
        result, _ = compare_over(
            self.model,
            args["model_a"],
            args["model_b"],
            corpus,
            clamp=float(args["clamp"]),
            min_count=int(args["min_count"]),
            progress=progress,
            cancelled=cancelled.is_set,
            exports_dir=corpus.root / EXPORTS_DIR,
        )
        return result

    def heartbeat(self, every_s: float) -> None:
        """From a thread of its own: the server kills a worker whose heartbeat stops."""
        while True:
            time.sleep(every_s)
            self.send({"id": -2})

    def run(self) -> None:
        while True:
            try:
                message = self.inbox.get(timeout=30)
            except queue.Empty:
                self.idle()
                continue
            if message is None:
                return
            self.handle(message)
            self.unload_idle()
            self.check_memory()

    def handle(self, message: dict[str, Any]) -> None:
        from lenscope.errors import JobCancelled, LenscopeError

        rid = message["id"]
        cancelled = self.cancel_events.get(rid, threading.Event())
        op = self.find_op(str(message.get("op")))
        try:
            if op is None:
                raise LenscopeError(f"unknown worker op {message.get('op')!r}")
            if cancelled.is_set():  # given up on while it waited in the inbox: nobody wants the answer
                raise JobCancelled(f"{message.get('op')!r} was cancelled before it started")
            result = op(message.get("args") or {}, lambda p: self.send({"id": rid, "progress": p}), cancelled)
            try:
                self.send({"id": rid, "ok": True, "result": result})
            except (TypeError, ValueError, OverflowError) as exc:  # a result msgpack cannot carry: still answer
                self.send({"id": rid, "ok": False, "error": {"code": "internal", "message": f"unsendable result: {exc}"}})
        except LenscopeError as exc:
            self.send({"id": rid, "ok": False, "error": {"code": exc.code, "message": exc.message}})
        except MemoryError:
            self.unload(list(self.models))
            self.send(
                {"id": rid, "ok": False, "error": {"code": "out_of_memory", "message": "the model worker ran out of memory"}}
            )
        except Exception as exc:  # a bug or a model failure: report it, keep serving
            import traceback

            traceback.print_exc(file=sys.stderr)
            self.send({"id": rid, "ok": False, "error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}})
        finally:
            self.cancel_events.pop(rid, None)


HEARTBEAT_S = 2.0


def encode(wire: dict[str, Any], encoding: str | None) -> bytes:
    """The response body, encoded here so the server sends (and caches) it as it is."""
    from lenscope.wire_codec import encode_json, encode_msgpack

    return encode_json(wire) if encoding == "json" else encode_msgpack(wire)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    import json

    config = json.loads(os.environ.get("LENSCOPE_WORKER_CONFIG", "{}"))
    keep_heap()
    # The protocol owns fd 1; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    worker = Worker(
        out,
        device=config.get("device") or None,
        memory_limit_mb=int(config.get("memory_limit_mb", 0)),
        idle_unload_s=float(config.get("idle_unload_s", 0)),
        model_dirs=list(config.get("model_dirs", [])),
        dtype=config.get("dtype") or None,
    )
    # the heartbeat first: importing torch below can take seconds on a loaded machine
    threading.Thread(target=worker.heartbeat, args=(HEARTBEAT_S,), daemon=True).start()
    threads = config.get("threads")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    reader = threading.Thread(target=worker.read_loop, args=(sys.stdin.buffer,), daemon=True)
    reader.start()
    worker.send({"id": 0, "ok": True, "result": {"ready": True, "pid": os.getpid()}})
    preload = config.get("preload")
    if preload:
        worker.handle({"id": -1, "op": "load", "args": {"model": preload}})
    worker.run()


if __name__ == "__main__":
    main()
