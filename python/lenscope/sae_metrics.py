"""How good an SAE is on held-out windows: the numbers of its card, measured one way for the
training script and for the test that re-measures the shipped SAE.

Over every non-BOS position (the BOS is never spliced or counted: its activations are outliers
that SAEs are not trained on):
- ``l0``: mean number of active features per token;
- ``explained_variance``: ``1 - sum |x - x_hat|^2 / sum |x - mean(x)|^2``;
- ``dead_share``: the share of features that never fire on these windows;
- ``loss_clean`` / ``loss_spliced`` / ``loss_zero_ablated``: next-token cross-entropy (nats) with
  the hook point left alone, replaced by the SAE's reconstruction, and zeroed;
  ``loss_increase = spliced - clean``; ``loss_recovered = (zero - spliced) / (zero - clean)``.
"""

from __future__ import annotations

from typing import Any

import torch

from lenscope.sae import SparseAutoencoder


def _ce(logits: torch.Tensor, x: torch.Tensor) -> tuple[float, int]:
    lg = logits[:, :-1].float()
    loss = torch.nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
    return float(loss), x[:, 1:].numel()


@torch.inference_mode()
def sae_metrics(model: Any, sae: SparseAutoencoder, windows: torch.Tensor, batch: int = 16) -> dict[str, float]:
    """The card's numbers for ``sae`` on ``model`` over ``windows`` (``[BOS] + tokens`` rows)."""
    device = next(model.parameters()).device
    hp = sae.hook_point
    fired = torch.zeros(sae.d_sae, dtype=torch.bool, device=device)
    n_tok, active, err, sum_x, sum_x2 = 0, 0.0, 0.0, torch.zeros(sae.d_in, dtype=torch.float64, device=device), 0.0
    losses = {"clean": 0.0, "spliced": 0.0, "zero": 0.0}
    count = 0

    def measure(act: torch.Tensor, hook: Any) -> None:
        nonlocal n_tok, active, err, sum_x2
        x = act[:, 1:].float().reshape(-1, sae.d_in)
        f = sae.encode(x)
        on = f > 0
        fired.logical_or_(on.any(0))
        active += float(on.sum())
        err += float((sae.decode(f) - x).pow(2).sum())
        sum_x.add_(x.sum(0).double())
        sum_x2 += float(x.double().pow(2).sum())
        n_tok += x.shape[0]

    def splice(act: torch.Tensor, hook: Any) -> torch.Tensor:
        out = act.clone()
        out[:, 1:] = sae.decode(sae.encode(act[:, 1:])).to(act.dtype)
        return out

    def zero(act: torch.Tensor, hook: Any) -> torch.Tensor:
        out = act.clone()
        out[:, 1:] = 0
        return out

    for i in range(0, len(windows), batch):
        x = windows[i : i + batch].to(device)
        for key, hook in (("clean", measure), ("spliced", splice), ("zero", zero)):
            total, c = _ce(model.run_with_hooks(x, fwd_hooks=[(hp, hook)]), x)
            losses[key] += total
        count += c
    variance = sum_x2 - float((sum_x * sum_x).sum()) / max(n_tok, 1)
    clean, spliced, zeroed = (losses[k] / count for k in ("clean", "spliced", "zero"))
    return {
        "tokens": n_tok,
        "l0": active / max(n_tok, 1),
        "explained_variance": 1.0 - err / variance,
        "dead_share": float((~fired).float().mean()),
        "loss_clean": clean,
        "loss_spliced": spliced,
        "loss_zero_ablated": zeroed,
        "loss_increase": spliced - clean,
        "loss_recovered": (zeroed - spliced) / (zeroed - clean),
    }
