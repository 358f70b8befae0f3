"""The server's side of the model worker: spawn, talk, supervise, restart.

Runs on the Jupyter server's asyncio loop and never imports torch. Requests are frames on the
worker's stdin; a reader task resolves each request's future from the worker's stdout. When
the worker dies, every request in flight fails at once with :class:`WorkerDied` (the server
answers 503) and a fresh worker is started for the next request.

Nothing waits forever: a request has a deadline (:class:`WorkerTimeout`, 504), and the worker
sends a heartbeat from a thread of its own; a worker that misses it (stopped, wedged) is killed
and restarted, and the requests it held fail at once. A request counts against the queue only
from the moment its frame is written, and is released on every way out, a cancelled await
included (the server cancels a request whose client went away; the worker is told, and skips it
if it has not started it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lenscope.errors import InvalidInput, LenscopeError
from lenscope_server.worker.protocol import HEADER, pack_frame, unpack_body

log = logging.getLogger(__name__)
START_TIMEOUT_S = 120.0
"""How long a new worker may take to say hello (Python and its imports, on a loaded machine)."""


class WorkerDied(LenscopeError):
    code = "worker_died"


class QueueFull(LenscopeError):
    code = "queue_full"


class WorkerTimeout(LenscopeError):
    code = "worker_timeout"


class WorkerError(LenscopeError):
    """An error the worker reported, carrying the worker's own code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class WorkerConfig:
    device: str | None = None
    dtype: str | None = None
    memory_limit_mb: int = 0
    idle_unload_s: float = 0
    model_dirs: list[str] = field(default_factory=list)
    preload: str | None = None
    threads: int | None = None
    queue_limit: int = 32
    heartbeat_timeout_s: float = 20.0


@dataclass
class _Pending:
    future: asyncio.Future[Any]
    on_progress: Callable[[dict[str, Any]], None] | None


class WorkerClient:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.proc: asyncio.subprocess.Process | None = None
        self.state = "stopped"  # stopped | starting | ready | dead
        self.restarts = 0
        self.started_at: float | None = None
        self.loaded: list[str] = []
        self.loading: set[str] = set()
        self.last_exit: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._ready: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self._last_seen = 0.0
        self._kill_reason: str | None = None

    def health(self) -> dict[str, Any]:
        return {"state": self.state, "pid": self.pid, "restarts": self.restarts, "last_exit": self.last_exit}

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        async with self._start_lock:
            if self.proc and self.proc.returncode is None:
                return
            loop = asyncio.get_running_loop()
            self._ready = loop.create_future()
            env = dict(os.environ, LENSCOPE_WORKER_CONFIG=json.dumps(self._worker_config()))
            self.state = "starting"
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "lenscope_server.worker.process",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                limit=2**30,
            )
            self.started_at = time.time()
            self._last_seen = time.monotonic()
            self._kill_reason = None
            if self.config.preload:
                self.loading.add(self.config.preload)
            self._reader = asyncio.create_task(self._read(self.proc))
            if self._watchdog is None or self._watchdog.done():
                self._watchdog = asyncio.create_task(self._watch())
        await asyncio.shield(self._ready)

    async def _watch(self) -> None:
        """Kill a worker whose heartbeat stops (SIGSTOP, a wedged native call): its requests
        then fail with a clear message and the next request gets a fresh worker."""
        while self.state != "stopped":
            await asyncio.sleep(min(1.0, self.config.heartbeat_timeout_s / 4))
            proc = self.proc
            # before its hello a worker is importing its libraries: it gets longer to say it
            limit = (
                self.config.heartbeat_timeout_s
                if self.state == "ready"
                else max(START_TIMEOUT_S, self.config.heartbeat_timeout_s)
            )
            silent = time.monotonic() - self._last_seen
            if proc is not None and proc.returncode is None and silent > limit:
                self.kill(
                    f"no heartbeat for {silent:.0f} s" if self.state == "ready" else f"no hello within {limit:g} s of starting"
                )

    def kill(self, reason: str) -> None:
        """End the worker now (SIGKILL also ends a stopped process); requests in flight fail."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            log.warning("lenscope: killing the model worker (pid %s): %s", proc.pid, reason)
            self._kill_reason = reason
            self.state = "unresponsive"
            proc.kill()

    def _worker_config(self) -> dict[str, Any]:
        c = self.config
        return {
            "device": c.device,
            "dtype": c.dtype,
            "memory_limit_mb": c.memory_limit_mb,
            "idle_unload_s": c.idle_unload_s,
            "model_dirs": c.model_dirs,
            "preload": c.preload,
            "threads": c.threads,
        }

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                header = await proc.stdout.readexactly(HEADER.size)
                (length,) = HEADER.unpack(header)
                message = unpack_body(await proc.stdout.readexactly(length))
                if proc is self.proc:
                    self._last_seen = time.monotonic()
                self._dispatch(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        code = await proc.wait()
        self._on_exit(proc, code)

    def _dispatch(self, message: dict[str, Any]) -> None:
        rid = message.get("id")
        if rid == -2:  # a heartbeat
            return
        if rid == 0:  # the worker's hello
            self.state = "ready"
            if self._ready and not self._ready.done():
                self._ready.set_result(None)
            return
        if rid == -1:  # the preload finished
            self.loading.discard(self.config.preload or "")
            self.loaded = list(message.get("result", {}).get("loaded", self.loaded))
            return
        if not isinstance(rid, int) or (pending := self._pending.get(rid)) is None:
            return
        if "progress" in message:
            if pending.on_progress:
                pending.on_progress(message["progress"])
            return
        self._pending.pop(rid, None)
        if pending.future.done():
            return
        if message.get("ok"):
            result = message.get("result")
            if isinstance(result, dict) and "loaded" in result:
                self.loaded = list(result["loaded"])
            pending.future.set_result(result)
        else:
            err = message.get("error") or {}
            pending.future.set_exception(WorkerError(str(err.get("code", "internal")), str(err.get("message", "worker error"))))

    def _on_exit(self, proc: asyncio.subprocess.Process, code: int) -> None:
        if proc is not self.proc:
            return
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        if self._kill_reason:
            how = f"killed by lenscope: {self._kill_reason}"
        self.last_exit = how
        self.state = "dead"
        self.loaded, self.loading = [], set()
        if self._ready and not self._ready.done():
            self._ready.set_exception(WorkerDied(f"the model worker failed to start ({how}); see the server log"))
            self._ready.exception()  # retrieved: nobody may be waiting
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(
                    WorkerDied(f"the model worker stopped ({how}) while handling this request; it is restarting, try again")
                )
        self.restarts += 1
        # Restart now so the next request finds a worker, unless we are shutting down.
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._restart_quietly()))

    async def _restart_quietly(self) -> None:
        if self.state == "dead":
            with contextlib.suppress(LenscopeError, OSError):
                await self.start()

    async def request(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        on_sent: Callable[[int], None] | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Send one op and await its result. ``on_sent`` gets the request id (to cancel it).

        Arguments that cannot be packed are the caller's error (:class:`InvalidInput`), found
        before anything is queued.
        """
        rid = next(self._ids)
        try:
            frame = pack_frame({"id": rid, "op": op, "args": args or {}})
        except (TypeError, ValueError, OverflowError) as exc:  # msgpack: int beyond 64 bits, bad str, ...
            raise InvalidInput(f"the request's arguments cannot be sent to the model worker: {exc}") from exc
        if len(self._pending) >= self.config.queue_limit:
            raise QueueFull(
                f"the model worker has {len(self._pending)} requests queued (limit {self.config.queue_limit}); retry shortly"
            )
        await self.start()
        proc = self.proc
        assert proc is not None and proc.stdin is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            proc.stdin.write(frame)
            self._pending[rid] = _Pending(future, on_progress)
            if on_sent:
                on_sent(rid)
            await proc.stdin.drain()
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except asyncio.CancelledError:  # its client went away: the worker skips it if not started yet
            self._cancel_nowait(proc, rid)
            raise
        except (ConnectionError, RuntimeError) as exc:
            raise WorkerDied(f"the model worker is not accepting requests ({exc}); it is restarting, try again") from exc
        except asyncio.TimeoutError:
            await self.cancel(rid)
            raise WorkerTimeout(
                f"the model worker did not answer {op!r} within {timeout_s:g} s (it may still be loading a model or "
                "working on a long text); try again, or select less text"
            ) from None
        finally:
            self._pending.pop(rid, None)

    def _cancel_nowait(self, proc: asyncio.subprocess.Process, rid: int) -> None:
        if proc.stdin is not None and proc.returncode is None and not proc.stdin.is_closing():
            with contextlib.suppress(ConnectionError, RuntimeError):
                proc.stdin.write(pack_frame({"id": rid, "op": "cancel"}))

    async def cancel(self, rid: int) -> None:
        if self.proc and self.proc.stdin and self.proc.returncode is None:
            self.proc.stdin.write(pack_frame({"id": rid, "op": "cancel"}))
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.proc.stdin.drain()

    async def stop(self) -> None:
        self.state = "stopped"
        proc, self.proc = self.proc, None
        if proc and proc.returncode is None:
            if proc.stdin:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        for task in (self._reader, self._watchdog):
            if task:
                task.cancel()
