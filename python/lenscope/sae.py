"""Sparse autoencoders read from local folders, in the two formats researchers have on disk.

- EleutherAI ``sparsify``: ``cfg.json`` (``d_in``, ``num_latents`` or ``expansion_factor``,
  ``k``, ``activation``) and ``sae.safetensors`` (``encoder.weight [d_sae, d_in]``,
  ``encoder.bias``, ``W_dec [d_sae, d_in]``, ``b_dec``). Its folder's name is the hook point
  (``sparsify`` saves one folder per hook point under a run folder).
- SAELens: ``cfg.json`` (``d_in``, ``d_sae``, ``architecture``, ``apply_b_dec_to_input``,
  ``normalize_activations``, the hook in ``meta.hook_name`` or, before v6, ``hook_name`` /
  ``hook_point``) and ``sae_weights.safetensors`` (``W_enc [d_in, d_sae]``, ``b_enc``,
  ``W_dec [d_sae, d_in]``, ``b_dec``, ``threshold`` for JumpReLU).

Both are read into one :class:`SparseAutoencoder` with float32 weights on the model's device;
the libraries themselves are not needed (``sae-lens`` requires TransformerLens < 4). Encoding
follows each library's own ``encode`` (tests compare against ``sparsify``'s): ``topk`` keeps the
``k`` largest of ``relu(pre)``, ``standard`` is ``relu(pre)``, ``jumprelu`` is
``pre * (pre > threshold)``, with ``pre = (x - b_dec) @ W_enc + b_enc`` (``b_dec`` subtracted
when the format says so). A lenscope ``lenscope.json`` beside a folder may name its model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lenscope.errors import InvalidInput, ModelUnavailable

SPARSIFY_WEIGHTS = "sae.safetensors"
SAELENS_WEIGHTS = "sae_weights.safetensors"
CONFIG = "cfg.json"
LENSCOPE_META = "lenscope.json"
ARCHITECTURES = ("topk", "standard", "jumprelu")


class SaeUnavailable(ModelUnavailable):
    """An SAE folder that cannot be read, or that does not fit the model it is used with."""

    code = "sae_unavailable"


@dataclass
class SparseAutoencoder:
    name: str
    hook_point: str  # a TransformerLens hook name, e.g. "blocks.0.mlp.hook_post"
    architecture: str  # one of ARCHITECTURES
    k: int | None  # topk only
    W_enc: torch.Tensor  # [d_in, d_sae]
    b_enc: torch.Tensor  # [d_sae]
    W_dec: torch.Tensor  # [d_sae, d_in]
    b_dec: torch.Tensor  # [d_in]
    threshold: torch.Tensor | None  # [d_sae], jumprelu only
    subtract_b_dec: bool
    format: str  # "sparsify" | "saelens"
    folder: Path
    model: str | None = None  # the model it was trained on, when the folder says

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    def to(self, device: torch.device | str) -> SparseAutoencoder:
        for f in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold"):
            t = getattr(self, f)
            if t is not None:
                setattr(self, f, t.to(device))
        return self

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.subtract_b_dec:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Dense feature activations ``[..., d_sae]`` (zeros where a feature is off)."""
        pre = self.pre(x)
        if self.architecture == "standard":
            return torch.relu(pre)
        if self.architecture == "jumprelu":
            assert self.threshold is not None
            return pre * (pre > self.threshold)
        acts = torch.relu(pre)
        top = acts.topk(int(self.k or 1), dim=-1)
        return torch.zeros_like(acts).scatter_(-1, top.indices, top.values)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f.float() @ self.W_dec + self.b_dec

    def output_directions(self, model: Any) -> torch.Tensor | None:
        """Each feature's decoder direction as written into the residual stream ``[d_sae, d_model]``,
        or None where the hook point is not linearly downstream of the residual (then a card has
        no logit effects). MLP post-activations go through the layer's ``W_out``."""
        hp = self.hook_point
        if hp.endswith("mlp.hook_post"):
            layer = int(hp.split(".")[1])
            w_out: torch.Tensor = model.W_out[layer].detach().float().to(self.W_dec.device)
            return self.W_dec @ w_out
        if hp.endswith(("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_mlp_out", "hook_attn_out")):
            return self.W_dec
        return None


def _read_json(path: Path, folder_label: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SaeUnavailable(f"SAE folder {folder_label} has no {path.name}") from exc
    except (OSError, ValueError) as exc:
        raise SaeUnavailable(f"SAE folder {folder_label}: {path.name} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SaeUnavailable(f"SAE folder {folder_label}: {path.name} is not a JSON object")
    return data


def _read_weights(path: Path, folder_label: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return {k: v.float() for k, v in load_file(str(path)).items()}
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise SaeUnavailable(f"SAE folder {folder_label}: {path.name} cannot be read ({exc})") from exc


def sae_format(folder: Path) -> str | None:
    """``"sparsify"``, ``"saelens"``, or None when ``folder`` holds neither."""
    if (folder / SAELENS_WEIGHTS).is_file():
        return "saelens"
    if (folder / SPARSIFY_WEIGHTS).is_file():
        return "sparsify"
    return None


def _expect(weights: dict[str, torch.Tensor], key: str, shape: tuple[int, ...], label: str, file: str) -> torch.Tensor:
    if key not in weights:
        raise SaeUnavailable(f"SAE folder {label}: {file} has no tensor {key!r} (it has {', '.join(sorted(weights)) or 'none'})")
    t = weights[key]
    if tuple(t.shape) != shape:
        raise SaeUnavailable(
            f"SAE folder {label}: {file}'s {key} has shape {list(t.shape)}, expected {list(shape)} from cfg.json"
        )
    return t


def _int(cfg: dict[str, Any], key: str, label: str) -> int:
    v = cfg.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise SaeUnavailable(f"SAE folder {label}: cfg.json's {key} must be a positive integer, got {v!r}")
    return v


def load_sae(folder: Path, name: str | None = None, hook_point: str | None = None, label: str | None = None) -> SparseAutoencoder:
    """Read the SAE in ``folder`` (either format). ``label`` names the folder in errors (the
    server passes a root-relative path); ``hook_point`` overrides what the folder says."""
    folder = Path(folder)
    label = label or str(folder)
    if not folder.is_dir():
        raise SaeUnavailable(f"no SAE folder at {label}")
    meta = _read_json(folder / LENSCOPE_META, label) if (folder / LENSCOPE_META).is_file() else {}
    if sae_format(folder) is None:  # sparsify's run layout: one folder per hook point
        inner = sorted(p for p in folder.iterdir() if p.is_dir() and sae_format(p))
        if len(inner) == 1:
            folder, label = inner[0], f"{label}/{inner[0].name}"
        elif len(inner) > 1:
            names = ", ".join(p.name for p in inner)
            raise SaeUnavailable(f"SAE folder {label} holds SAEs for several hook points ({names}): name one of them")
    elif (folder.parent / LENSCOPE_META).is_file() and not meta:
        meta = _read_json(folder.parent / LENSCOPE_META, label)
    fmt = sae_format(folder)
    if fmt is None:
        raise SaeUnavailable(f"SAE folder {label} has neither {SPARSIFY_WEIGHTS} (sparsify) nor {SAELENS_WEIGHTS} (SAELens)")
    cfg = _read_json(folder / CONFIG, label)
    d_in = _int(cfg, "d_in", label)
    if fmt == "sparsify":
        if cfg.get("transcode"):
            raise SaeUnavailable(f"SAE folder {label} is a sparsify transcoder: only autoencoders are supported")
        if cfg.get("skip_connection"):
            raise SaeUnavailable(f"SAE folder {label} has a skip connection: not supported")
        activation = cfg.get("activation", "topk")
        if activation != "topk":
            raise SaeUnavailable(f"SAE folder {label}: sparsify activation {activation!r} is not supported (only topk)")
        d_sae = cfg.get("num_latents") or d_in * int(cfg.get("expansion_factor", 0) or 0)
        if not isinstance(d_sae, int) or d_sae < 1:
            raise SaeUnavailable(f"SAE folder {label}: cfg.json gives neither num_latents nor expansion_factor")
        k = _int(cfg, "k", label)
        w = _read_weights(folder / SPARSIFY_WEIGHTS, label)
        enc = _expect(w, "encoder.weight", (d_sae, d_in), label, SPARSIFY_WEIGHTS)
        sae = SparseAutoencoder(
            name=name or meta.get("name") or folder.name,
            hook_point=hook_point or meta.get("hook_point") or folder.name,
            architecture="topk",
            k=k,
            W_enc=enc.T.contiguous(),
            b_enc=_expect(w, "encoder.bias", (d_sae,), label, SPARSIFY_WEIGHTS),
            W_dec=_expect(w, "W_dec", (d_sae, d_in), label, SPARSIFY_WEIGHTS),
            b_dec=_expect(w, "b_dec", (d_in,), label, SPARSIFY_WEIGHTS),
            threshold=None,
            subtract_b_dec=True,
            format=fmt,
            folder=folder,
            model=meta.get("model"),
        )
    else:
        d_sae = _int(cfg, "d_sae", label)
        arch = cfg.get("architecture", "standard")
        if arch not in ARCHITECTURES:
            raise SaeUnavailable(f"SAE folder {label}: architecture {arch!r} is not supported ({', '.join(ARCHITECTURES)})")
        norm = cfg.get("normalize_activations", "none")
        if norm not in ("none", None):
            raise SaeUnavailable(f"SAE folder {label}: normalize_activations {norm!r} is not supported (only 'none')")
        raw_meta = cfg.get("meta")
        cfg_meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        hook = hook_point or meta.get("hook_point") or cfg_meta.get("hook_name") or cfg.get("hook_name") or cfg.get("hook_point")
        if not isinstance(hook, str) or not hook:
            raise SaeUnavailable(f"SAE folder {label}: cfg.json names no hook (meta.hook_name)")
        w = _read_weights(folder / SAELENS_WEIGHTS, label)
        sae = SparseAutoencoder(
            name=name or meta.get("name") or folder.name,
            hook_point=hook,
            architecture=arch,
            k=_int(cfg, "k", label) if arch == "topk" else None,
            W_enc=_expect(w, "W_enc", (d_in, d_sae), label, SAELENS_WEIGHTS),
            b_enc=_expect(w, "b_enc", (d_sae,), label, SAELENS_WEIGHTS),
            W_dec=_expect(w, "W_dec", (d_sae, d_in), label, SAELENS_WEIGHTS),
            b_dec=_expect(w, "b_dec", (d_in,), label, SAELENS_WEIGHTS),
            threshold=_expect(w, "threshold", (d_sae,), label, SAELENS_WEIGHTS) if arch == "jumprelu" else None,
            subtract_b_dec=bool(cfg.get("apply_b_dec_to_input", True)),
            format=fmt,
            folder=folder,
            model=meta.get("model") or cfg_meta.get("model_name") or cfg.get("model_name"),
        )
    if sae.k is not None and sae.k > sae.d_sae:
        raise SaeUnavailable(f"SAE folder {label}: k={sae.k} exceeds its {sae.d_sae} features")
    return sae


def hook_width(model: Any, hook_point: str) -> int | None:
    """The last dimension of ``hook_point``'s activation in ``model``, or None if it has no such hook."""
    if hook_point not in getattr(model, "hook_dict", {}):
        return None
    cfg = model.cfg
    if hook_point.endswith(("mlp.hook_post", "mlp.hook_pre")):
        return int(cfg.d_mlp)
    if hook_point.endswith(("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_mlp_out", "hook_attn_out")):
        return int(cfg.d_model)
    seen: list[int] = []
    bos = model.tokenizer.bos_token_id or 0
    model.run_with_hooks(torch.tensor([[bos]]), fwd_hooks=[(hook_point, lambda a, hook: seen.append(int(a.shape[-1])))])
    return seen[0] if seen else None


def check_fits(sae: SparseAutoencoder, model: Any, model_name: str) -> None:
    """Raise a clear error when ``sae`` cannot read ``model``'s activations."""
    width = hook_width(model, sae.hook_point)
    if width is None:
        raise InvalidInput(f"SAE {sae.name!r} reads {sae.hook_point!r}, which model {model_name!r} does not have")
    if width != sae.d_in:
        raise InvalidInput(
            f"SAE {sae.name!r} expects d_in={sae.d_in} at {sae.hook_point!r}, but model {model_name!r} has {width} there"
        )
