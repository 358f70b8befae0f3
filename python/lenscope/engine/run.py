"""The hooked forward: a plan's windows in batches, on the model's device, with captures and
intervention hooks, yielding each window's reported positions.

What a feature derives (log-probs, top neurons, attention summaries, attributions) is its own
business; this module only runs the model and hands back logits and captured activations,
already indexed at the positions each window reports.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lenscope.engine.plan import Plan
from lenscope.engine.protocol import HookedModel
from lenscope.engine.windows import Window
from lenscope.models import hooks as hook_names
from lenscope.models.shape import shape_of

LOGITS_BUDGET_BYTES = 256 * 2**20
"""Windows per forward batch are chosen so the float32 logits stay under this."""
DERIVE_CHUNK_ELEMENTS = 2**22
"""Features derive rows in chunks of about this many elements (~16 MB of float32): fresh
multi-hundred-MB temporaries cost more in page faults than the arithmetic on them."""

Capture = str | tuple[str, Callable[[torch.Tensor], torch.Tensor]]
"""A hook point to capture, or ``(hook point, reduce)`` to capture a reduction of it."""
Intervene = Callable[[list[Window]], list[tuple[str, Callable[..., Any]]]]
"""``intervene(batch)``: hooks that change the forward of a batch of windows (row ``b`` is ``batch[b]``)."""


def model_device(model: HookedModel) -> torch.device:
    device: torch.device = next(model.parameters()).device
    return device


def mlp_hook_names(model: HookedModel) -> list[str]:
    """Every layer's MLP post-activation hook (none for an attention-only model)."""
    shape = shape_of(model)
    return [hook_names.mlp_post(layer) for layer in range(shape.n_layers)] if shape.has_mlp else []


def capture(
    store: list[torch.Tensor], reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> Callable[[torch.Tensor, Any], None]:
    """A forward hook that appends the hooked activation (or ``reduce`` of it, so that a large
    activation such as an attention pattern is never kept whole) to ``store``."""

    def hook(act: torch.Tensor, hook: Any) -> None:
        store.append(act if reduce is None else reduce(act))

    return hook


_HOOK_POINTS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def hook_point(model: HookedModel, name: str) -> Any | None:
    """The hook point ``run_with_hooks`` would resolve ``name`` to, found once per model and
    name; None when a hook added to it directly might not behave the same (compatibility-mode
    aliases, a model that is not a bridge) or the name does not resolve."""
    points = _HOOK_POINTS.setdefault(model, {})
    bridge: Any = model  # the bridge's own hook registry: not part of the HookedModel contract
    if name not in points:
        hp = None
        if not getattr(bridge, "compatibility_mode", True) and hasattr(bridge, "_resolve_hook_point"):
            try:
                from transformer_lens.model_bridge.bridge_core import build_alias_to_canonical_map

                hook_dict = bridge.hook_dict
                _, hp = bridge._resolve_hook_point(name, build_alias_to_canonical_map(hook_dict), hook_dict)
            except Exception:  # run_with_hooks gives the error, in its own words
                hp = None
        points[name] = hp
    return points[name]


def run_hooked(model: HookedModel, x: torch.Tensor, fwd: list[tuple[Any, Callable[..., Any]]]) -> torch.Tensor:
    """``model.run_with_hooks(x, fwd_hooks=fwd)`` without its per-call cost when every hook names
    a hook point: rebuilding the model's hook dictionary and alias map on each call costs ~0.5 ms,
    a few % of a small model's forward. The hooks are added to their points directly (through
    the bridge's own checks) and removed after."""
    if not fwd:
        out: torch.Tensor = model(x)
        return out
    points: list[Any] = [hook_point(model, name) if isinstance(name, str) else None for name, _ in fwd]
    if any(hp is None for hp in points):
        out = model.run_with_hooks(x, fwd_hooks=fwd)
        return out
    added: list[tuple[Any, Any]] = []
    bridge: Any = model  # every point resolved: it is a bridge
    try:
        for hp, (name, fn) in zip(points, fwd):
            bridge.check_hooks_to_add(hp, hp.name or name, fn, dir="fwd")
            added.append((hp, hp.add_hook(fn, dir="fwd")))
        out = model(x)
    finally:
        for hp, handle in added:
            handle.hook.remove()
            hp.fwd_hooks[:] = [h for h in hp.fwd_hooks if h is not handle]
    return out


def _batches(windows: list[Window], per_batch: int) -> list[list[Window]]:
    return [windows[i : i + per_batch] for i in range(0, len(windows), per_batch)]


@dataclass
class ForwardBatch:
    """One forward over a batch of windows: the logits and hooked activations, with where each
    window's reported positions are in them."""

    windows: list[Window]
    locals_: list[slice]  # the reported positions of window b in row b of the batch
    positions: list[torch.Tensor]  # the S positions window b reports
    logits: torch.Tensor  # [1, reported rows of every window in order, vocab] when ``picked``, else [batch, width, vocab]
    picked: bool
    acts: list[torch.Tensor]

    def reported_logits(self) -> torch.Tensor | None:
        """The logits of every reported position of the batch, in S order, as one 2-D view (None
        when the whole batch was unembedded: then they are not one block)."""
        return self.logits[0] if self.picked else None

    def per_window(self) -> Iterator[tuple[Window, torch.Tensor, torch.Tensor, list[torch.Tensor]]]:
        offset = 0
        for b, (w, local, positions) in enumerate(zip(self.windows, self.locals_, self.positions)):
            if self.picked:
                window_logits = self.logits[0, offset : offset + len(positions)]
                offset += len(positions)
            else:
                window_logits = self.logits[b, local]  # a view, not a copy
            yield w, positions, window_logits, [a[b, local] for a in self.acts]


def forward_windows(
    model: HookedModel,
    plan: Plan,
    hooks: Sequence[Capture],
    timings: dict[str, float],
    reduce: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    intervene: Intervene | None = None,
    reported_logits_only: bool = False,
) -> Iterator[tuple[Window, torch.Tensor, torch.Tensor, list[torch.Tensor]]]:
    """Run the plan's windows in batches; yield ``(window, positions, logits, hooked acts)``.

    ``positions`` are the S positions the window reports (from ``plan.first`` on), ``logits``
    and each of ``acts`` are already indexed at them (their dimension 1 must be the position:
    ``reduce`` may reshape an activation to make it so; a ``(name, reduce)`` entry of ``hooks``
    captures the same hook point again with a reduce of its own). ``intervene(batch)`` gives hooks that
    change the forward of a batch of windows (row ``b`` is ``batch[b]``, BOS first); they run
    before the captures, so what is captured is the intervened activation. Time spent outside the forward (in the
    caller, between yields) is the caller's to count.

    With ``reported_logits_only`` the unembedding is applied to the reported positions only (a
    hook hands it just those rows of its input): windows overlap by half, so a long text's
    forward otherwise computes logits for about twice the positions anyone reads, and on a
    small model the unembedding is the largest matmul of the pass.
    """
    for batch in forward_batches(model, plan, hooks, timings, reduce, intervene, reported_logits_only):
        yield from batch.per_window()


def forward_named(
    model: HookedModel,
    plan: Plan,
    captures: Mapping[str, Capture],
    timings: dict[str, float],
    intervene: Intervene | None = None,
) -> Iterator[tuple[Window, torch.Tensor, dict[str, torch.Tensor]]]:
    """:func:`forward_windows` with each capture kept under its own key (``{key: hook point}`` or
    ``{key: (hook point, reduce)}``; a reduce keeps dimensions 0 and 1): the hook points need not
    be given in the order they fire (an SAE's may be any of the model's), and one point may be
    captured under several keys."""
    stores: dict[str, list[torch.Tensor]] = {}

    def hooks(batch: list[Window]) -> list[tuple[str, Callable[..., Any]]]:
        stores.clear()
        stores.update({key: [] for key in captures})
        own = [(c, capture(stores[k])) if isinstance(c, str) else (c[0], capture(stores[k], c[1])) for k, c in captures.items()]
        return [*(intervene(batch) if intervene else []), *own]

    # no logits are read here: only the reported rows are unembedded
    for batch in forward_batches(model, plan, [], timings, intervene=hooks, reported_logits_only=True):
        for b, (w, local, positions) in enumerate(zip(batch.windows, batch.locals_, batch.positions)):
            yield w, positions, {key: store[-1][b, local] for key, store in stores.items()}


def forward_batches(
    model: HookedModel,
    plan: Plan,
    hooks: Sequence[Capture],
    timings: dict[str, float],
    reduce: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    intervene: Intervene | None = None,
    reported_logits_only: bool = False,
) -> Iterator[ForwardBatch]:
    """What :func:`forward_windows` yields window by window, one forward batch at a time."""
    device = model_device(model)
    d_vocab = shape_of(model).d_vocab
    body = max(w.stop - w.start for w in plan.windows)
    per_batch = max(1, LOGITS_BUDGET_BYTES // ((body + 1) * d_vocab * 4))
    seq_t = torch.tensor(plan.seq, dtype=torch.int64, device=device)
    timings.setdefault("forward", 0.0)
    for batch in _batches(plan.windows, per_batch):
        x = torch.full((len(batch), body + 1), plan.bos, dtype=torch.int64, device=device)
        for b, w in enumerate(batch):  # right padding is harmless: attention is causal
            x[b, 1 : 1 + w.stop - w.start] = seq_t[w.start : w.stop]
        acts: list[torch.Tensor] = []
        t0 = time.perf_counter()
        fwd = (intervene(batch) if intervene else []) + [
            (h, capture(acts, (reduce or {}).get(h))) if isinstance(h, str) else (h[0], capture(acts, h[1])) for h in hooks
        ]
        locals_ = [slice(max(w.report_from, plan.first) - w.start + 1, w.report_to - w.start + 1) for w in batch]
        rows = None
        if reported_logits_only and hook_point(model, hook_names.UNEMBED_IN) is not None:
            width = body + 1
            rows = torch.cat(
                [torch.arange(b * width + sl.start, b * width + sl.stop, device=device) for b, sl in enumerate(locals_)]
            )
            logits = run_hooked(model, x, [*fwd, (hook_names.UNEMBED_IN, _pick_rows(rows))])
            if logits.shape[:2] != (1, len(rows)):  # the model reshaped what it unembeds: do it all
                acts.clear()
                rows, logits = None, run_hooked(model, x, fwd)
        else:
            logits = run_hooked(model, x, fwd)
        timings["forward"] += (time.perf_counter() - t0) * 1000
        positions = [torch.arange(sl.start + w.start - 1, w.report_to, device=device) for w, sl in zip(batch, locals_)]
        yield ForwardBatch(batch, locals_, positions, logits, rows is not None, acts)


def _pick_rows(rows: torch.Tensor) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    """A hook giving the unembedding only ``rows`` of its ``[batch, pos, d_model]`` input (as ``[1, rows, d_model]``)."""

    def hook(resid: torch.Tensor, hook: Any) -> torch.Tensor:
        return resid.reshape(-1, resid.shape[-1]).index_select(0, rows)[None]

    return hook


def run_capturing(
    model: HookedModel, x: torch.Tensor, capture_names: Sequence[str], fwd: Sequence[tuple[Any, Callable[..., Any]]] = ()
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One forward of token ids ``x`` (BOS included) with hooks ``fwd``, capturing the named
    hook points whole (after ``fwd`` changed them): ``(logits, {name: activation})``.
    For a single window, where :func:`forward_windows`' position bookkeeping is not needed."""
    stores: dict[str, list[torch.Tensor]] = {name: [] for name in capture_names}
    logits = run_hooked(model, x, [*fwd, *((name, capture(stores[name])) for name in capture_names)])
    return logits, {name: store[-1] for name, store in stores.items()}
