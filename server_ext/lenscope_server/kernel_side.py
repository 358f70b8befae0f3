"""The kernel half of ``lenscope.attach(model, name)``: a model that lives in a notebook's kernel
(fine-tuned, patched, edited in place: it exists nowhere on disk) served to the panel.

The kernel registers a comm target; the server opens a comm to it and sends the worker's own
requests (``{"id", "op", "args"}``), which run through the worker's own ops
(:class:`lenscope_server.worker.process.Worker`) on the attached model, so the answers are the
same wire bytes a worker would send. Which kernels hold which models is announced in a file per
kernel beside its connection file (``{runtime_dir}/lenscope-kernels/{kernel_id}.json``, with
the kernel's pid): the server lists a model only while its kernel is running in that process,
so a restarted or dead kernel's models disappear. Imports only the core library, ``comm`` and
``ipykernel`` (all in the kernel's environment), never jupyter_server.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from lenscope.processes import alive
from lenscope_server.worker.process import Worker

TARGET = "lenscope.attached"
REGISTRY_DIR = "lenscope-kernels"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class AttachError(ValueError):
    """A model that cannot be attached, with what to do."""


BACKGROUND = {"build_index", "compare_corpus"}
"""Long ops run on a thread of their own: the kernel keeps taking messages (a cancel, other
requests, the notebook's cells) while they run."""


class KernelWorker(Worker):
    """The worker's ops on the kernel's attached models; replies go back over the comm."""

    def __init__(self) -> None:
        super().__init__(out=None, device=None, memory_limit_mb=0, idle_unload_s=0, model_dirs=[])  # type: ignore[arg-type]
        self.attached: dict[str, Any] = {}
        self.comms: dict[int, Any] = {}  # request id -> the comm its answer goes back on

    def model(self, name: str) -> Any:
        """An attached model, else one of lenscope's own (a comparison with the default model
        over a corpus runs here, beside the attached one)."""
        if name in self.attached:
            return self.attached[name]
        return super().model(name)

    def unload(self, names: list[str]) -> None:
        super().unload([n for n in names if n not in self.attached])  # the user's models are theirs to drop

    def send(self, message: dict[str, Any]) -> None:
        comm = self.comms.get(int(message["id"]))
        if comm is not None:
            comm.send({"id": message["id"]}, buffers=[msgpack.packb(message, use_bin_type=True)])

    def on_msg(self, comm: Any, msg: dict[str, Any]) -> None:
        data = msg["content"]["data"]
        rid, op = int(data["id"]), str(data.get("op"))
        if op == "cancel":
            event = self.cancel_events.get(rid)
            if event is not None:
                event.set()
            return
        self.cancel_events[rid] = threading.Event()
        self.comms[rid] = comm
        message = {"id": rid, "op": op, "args": data.get("args") or {}}
        if op in BACKGROUND:
            threading.Thread(target=self._answer, args=(message,), name=f"lenscope-{op}", daemon=True).start()
        else:
            self._answer(message)

    def _answer(self, message: dict[str, Any]) -> None:
        try:
            self.handle(message)
        finally:
            self.comms.pop(message["id"], None)


_WORKER: KernelWorker | None = None


@dataclass
class Attached:
    name: str
    kernel_id: str
    shape: dict[str, Any]

    def _repr_html_(self) -> str:
        return (f"<p><b>{self.name}</b> is attached: pick it in lenscope's panel (Model). It runs in this kernel "
                f"and disappears when the kernel restarts.</p>")  # fmt: skip

    def __repr__(self) -> str:
        return f"Attached({self.name!r}, kernel {self.kernel_id[:8]}): pick it in lenscope's panel"


def _kernel() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        raise AttachError("lenscope.attach works in a Jupyter kernel (a notebook or console), not in plain Python")
    return kernel


def _registry() -> tuple[Path, str]:
    from ipykernel.connect import get_connection_file

    connection = Path(get_connection_file())
    kernel_id = connection.stem.removeprefix("kernel-")
    return connection.parent / REGISTRY_DIR, kernel_id


def _shape(model: Any) -> dict[str, Any]:
    from dataclasses import asdict

    from lenscope.models.shape import shape_of

    try:
        shape = asdict(shape_of(model))
    except (AttributeError, TypeError, ValueError) as exc:
        raise AttachError(f"not a TransformerLens model (a TransformerBridge or HookedTransformer): {exc}") from None
    if getattr(model, "tokenizer", None) is None:
        raise AttachError("the model has no tokenizer: lenscope needs one to analyze text")
    return shape


def attach(model: Any, name: str) -> Attached:
    """Make ``model`` (live in this kernel) selectable in lenscope's panel as ``name``.

    Analyses of it run here, in this kernel, on the model as it is at that moment (edit its
    weights and analyze again). Attaching a name again replaces the model; a name another
    running kernel has attached, or one of the server's own models, is refused.
    """
    global _WORKER
    if not isinstance(name, str) or not NAME.match(name):
        raise AttachError(f"name {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    shape = _shape(model)
    from lenscope.models.registry import list_models

    if any(name == m.name or name in m.aliases for m in list_models()):
        raise AttachError(f"{name!r} is the name of one of lenscope's own models: attach yours under another name")
    kernel = _kernel()
    folder, kernel_id = _registry()
    for other in folder.glob("*.json") if folder.is_dir() else []:
        if other.stem == kernel_id:
            continue
        try:
            entry = json.loads(other.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if name in entry.get("models", {}) and alive(int(entry.get("pid", 0))):
            raise AttachError(
                f"{name!r} is already attached by another running kernel ({entry.get('kernel_id', other.stem)[:8]}, "
                f"pid {entry.get('pid')}): attach this one under another name, or detach it there first"
            )
    if _WORKER is None:
        _WORKER = KernelWorker()
        worker = _WORKER
        kernel.comm_manager.register_target(TARGET, lambda comm, msg: comm.on_msg(lambda m: worker.on_msg(comm, m)))
    model.eval()
    _WORKER.attached[name] = model
    _write(folder, kernel_id)
    return Attached(name, kernel_id, shape)


def detach(name: str) -> None:
    """Take ``name`` off the panel's list (the model itself stays in the kernel)."""
    if _WORKER is not None and _WORKER.attached.pop(name, None) is not None:
        _write(*_registry())


def attached() -> list[str]:
    return sorted(_WORKER.attached) if _WORKER is not None else []


def _write(folder: Path, kernel_id: str) -> None:
    assert _WORKER is not None
    folder.mkdir(parents=True, exist_ok=True)
    entry = {
        "kernel_id": kernel_id,
        "pid": os.getpid(),
        "models": {name: _shape(m) for name, m in _WORKER.attached.items()},
    }
    tmp = folder / f".{kernel_id}.tmp"
    tmp.write_text(json.dumps(entry), encoding="utf-8")
    os.replace(tmp, folder / f"{kernel_id}.json")  # atomic: the server never reads half of it
