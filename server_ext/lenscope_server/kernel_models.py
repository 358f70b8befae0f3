"""The server half of ``lenscope.attach``: which running kernels hold attached models, and
requests to them through Jupyter's own kernel messaging (a comm; see
:mod:`lenscope_server.kernel_side`).

A model is listed while the kernel that announced it is one of this server's running kernels
*and* still the process that announced it: a restarted kernel (same id, new process) or a dead
one lists nothing. A kernel that is busy running a cell answers no comm message until the cell
ends; a request then times out with a message saying so, and nothing else waits on it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
from jupyter_client.session import Session

from lenscope.errors import LenscopeError, UnknownModel
from lenscope_server.kernel_side import REGISTRY_DIR, TARGET


class KernelUnavailable(LenscopeError):
    code = "kernel_unavailable"


class KernelBusy(LenscopeError):
    code = "kernel_busy"


class KernelLink:
    """One comm to one kernel; requests are matched to replies by id."""

    def __init__(self, manager: Any, kernel_id: str, pid: int | None) -> None:
        self.kernel_id, self.pid = kernel_id, pid
        km = manager.get_kernel(kernel_id)
        # a session of its own: clients sharing the kernel manager's session share a ZMQ identity,
        # and the kernel's replies would go to whichever connected last (a notebook's, or ours)
        session = Session(key=km.session.key, signature_scheme=km.session.signature_scheme, username="lenscope")
        self.client = km.client(session=session)
        self.client.start_channels()
        self.comm_id = uuid.uuid4().hex
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.progress: dict[int, Callable[[dict[str, Any]], None]] = {}
        self._send("comm_open", {"comm_id": self.comm_id, "target_name": TARGET, "data": {}})
        self.reader = asyncio.get_running_loop().create_task(self._read())

    def _send(self, msg_type: str, content: dict[str, Any]) -> None:
        self.client.shell_channel.send(self.client.session.msg(msg_type, content))

    async def _read(self) -> None:
        while True:
            msg = await self.client.get_iopub_msg()
            content = msg.get("content", {})
            if content.get("comm_id") != self.comm_id:
                continue
            if msg["msg_type"] == "comm_close":
                self._fail_all(KernelUnavailable("the kernel closed lenscope's connection (was lenscope.attach run there?)"))
                return
            if msg["msg_type"] == "comm_msg" and msg.get("buffers"):
                reply: dict[str, Any] = msgpack.unpackb(bytes(msg["buffers"][0]), raw=False)
                if "progress" in reply:
                    callback = self.progress.get(int(reply.get("id", -1)))
                    if callback is not None:
                        callback(reply["progress"])
                    continue
                future = self.waiting.pop(int(reply.get("id", -1)), None)
                if future is not None and not future.done():
                    future.set_result(reply)

    def fail(self, rid: int, exc: Exception) -> None:
        """End one request with ``exc`` (a job given up on); a late answer is then dropped."""
        future = self.waiting.pop(rid, None)
        if future is not None and not future.done():
            future.set_exception(exc)

    def _fail_all(self, exc: Exception) -> None:
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(exc)
        self.waiting.clear()

    async def request(
        self,
        op: str,
        args: dict[str, Any],
        timeout_s: float | None,
        model: str,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        on_sent: Callable[[int], None] | None = None,
    ) -> Any:
        """``timeout_s=None``: no deadline (a job: it is cancelled instead)."""
        rid = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[rid] = future
        if on_progress is not None:
            self.progress[rid] = on_progress
        self._send("comm_msg", {"comm_id": self.comm_id, "data": {"id": rid, "op": op, "args": args}})
        if on_sent is not None:
            on_sent(rid)
        try:
            reply = await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise KernelBusy(
                f"the kernel holding {model!r} did not answer within {timeout_s:.0f} s: it is probably running a cell. "
                "Try again when the cell has finished (or interrupt it)."
            ) from None
        finally:
            self.waiting.pop(rid, None)
            self.progress.pop(rid, None)
        if reply.get("ok"):
            return reply["result"]
        error = reply.get("error") or {}
        exc = LenscopeError(str(error.get("message", "the kernel could not answer")))
        exc.code = str(error.get("code", "internal"))
        raise exc

    def cancel(self, rid: int) -> None:
        self._send("comm_msg", {"comm_id": self.comm_id, "data": {"id": rid, "op": "cancel"}})

    def close(self) -> None:
        self.reader.cancel()
        self._fail_all(KernelUnavailable("the kernel went away"))
        self.client.stop_channels()


class KernelModels:
    def __init__(self, kernel_manager: Any, session_manager: Any = None) -> None:
        self.manager = kernel_manager
        self.sessions = session_manager
        self.links: dict[str, KernelLink] = {}
        self.seen: dict[str, dict[str, Any]] = {}  # every model listed since the server started

    @property
    def folder(self) -> Path:
        return Path(self.manager.connection_dir) / REGISTRY_DIR

    def _pid(self, kernel_id: str) -> int | None:
        try:
            km = self.manager.get_kernel(kernel_id)
        except KeyError:
            return None
        provisioner = getattr(km, "provisioner", None)
        pid = getattr(provisioner, "pid", None)
        return int(pid) if pid is not None else None

    def attached(self) -> dict[str, dict[str, Any]]:
        """``name -> {kernel_id, shape}`` of every model attached in a live kernel of this server;
        the first announcement of a name wins (a kernel refuses a name another one holds)."""
        out: dict[str, dict[str, Any]] = {}
        running = set(self.manager.list_kernel_ids())
        files = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if self.folder.is_dir() else []
        for path in files:
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
                kid, pid, models = str(entry["kernel_id"]), int(entry["pid"]), dict(entry["models"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if kid not in running or self._pid(kid) != pid:
                self._drop(kid)
                continue  # restarted (a new process under the same id), dead, or another server's
            for name, shape in models.items():
                out.setdefault(str(name), {"kernel_id": kid, "shape": shape})
        self.seen.update(out)
        return out

    def check_gone(self, model: str) -> None:
        """A model attached earlier and not now (the caller has just looked): say why, rather than
        "unknown model"."""
        if model in self.seen:
            raise UnknownModel(f"{model!r} is no longer attached: its kernel restarted or stopped. Run lenscope.attach again.")

    async def notebook_of(self, kernel_id: str) -> str | None:
        if self.sessions is None:
            return None
        try:
            for s in await self.sessions.list_sessions():
                if s.get("kernel", {}).get("id") == kernel_id:
                    return str(s.get("path") or s.get("name") or "") or None
        except Exception:
            return None
        return None

    def _link(self, model: str) -> KernelLink:
        found = self.attached().get(model)
        if found is None:
            self.check_gone(model)
            raise UnknownModel(f"{model!r} is not attached in any running kernel")
        kid, pid = found["kernel_id"], self._pid(found["kernel_id"])
        link = self.links.get(kid)
        if link is None or link.pid != pid:  # first use, or the kernel restarted and attached again
            self._drop(kid)
            link = self.links[kid] = KernelLink(self.manager, kid, pid)
        return link

    async def request(self, model: str, op: str, args: dict[str, Any], timeout_s: float | None, **callbacks: Any) -> Any:
        return await self._link(model).request(op, args, timeout_s, model, **callbacks)

    def runner(self, model: str) -> KernelRunner:
        return KernelRunner(self, model)

    def _drop(self, kernel_id: str) -> None:
        link = self.links.pop(kernel_id, None)
        if link is not None:
            link.close()

    def close(self) -> None:
        for kid in list(self.links):
            self._drop(kid)


class KernelRunner:
    """A job (an index build, a corpus comparison) for a kernel's model, run in that kernel with the
    job worker's interface: progress and cancel, no deadline. A kernel is never killed: a build
    that ignores its cancel keeps running there, and the job ends as cancelled all the same."""

    def __init__(self, models: KernelModels, model: str) -> None:
        self.models, self.model = models, model
        self.link: KernelLink | None = None
        self.rid: int | None = None

    async def request(
        self, op: str, args: dict[str, Any], *, on_sent: Callable[[int], None] | None = None, **callbacks: Any
    ) -> Any:
        def sent(rid: int) -> None:
            self.rid = rid
            if on_sent is not None:
                on_sent(rid)

        self.link = self.models._link(self.model)
        return await self.link.request(op, args, None, self.model, on_sent=sent, **callbacks)

    async def cancel(self, rid: int) -> None:
        if self.link is not None:
            self.link.cancel(rid)

    def kill(self, reason: str) -> None:
        if self.link is not None and self.rid is not None:
            self.link.fail(self.rid, KernelUnavailable(f"{reason}; the kernel holding {self.model!r} was left running"))
