"""TransformerLens legacy checkpoint folders on disk (``NeelNanda/gelu-1l``, ``attn-only-2l``,
``solu-*``, ``ArthurConmy/*``, ``Baidicoot/Othello-GPT`` as downloaded or copied).

Such a folder holds a TL-style ``config.json`` (``d_model``, ``n_layers``, ... and no Hugging Face
``model_type``) and the weights as a ``*final.pth`` torch state dict in ``HookedTransformer``
property format (``embed.W_E``, ``blocks.0.attn.W_Q`` ...). TransformerLens loads these only
from the hub (``TransformerBridge.boot_tl_legacy(repo_id)``); this module loads a folder through
the same steps, calling TransformerLens's own functions for each:

- the config: ``derive_tl_legacy_config`` (architecture, normalization, shortformer refusal), fed
  the folder's ``config.json`` instead of a hub download;
- the state dict: the folder's ``.pth`` through the same layout converters
  (``_convert_neel_solu_old_weights``, ``_convert_mingpt_weights``) and ``convert_tl_checkpoint``;
- the model: ``boot_native`` and a strict ``load_state_dict``, the missing unembed bias zero-filled
  as ``boot_tl_legacy`` does.

The tokenizer comes from tokenizer files in the folder, else from the config's ``tokenizer_name``
in the local Hugging Face cache; the network is never touched.
"""

from __future__ import annotations

import json
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lenscope.errors import ModelUnavailable

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

CONFIG_FILE = "config.json"
# what ``derive_tl_legacy_config`` reads unconditionally
REQUIRED_KEYS = ("d_model", "n_layers", "d_mlp", "d_head", "n_heads", "n_ctx", "d_vocab", "act_fn", "attn_only")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model")
CACHED_TOKENIZER_FILES = ("tokenizer_config.json", *TOKENIZER_FILES)


def read_config(folder: Path) -> dict[str, Any] | None:
    """The folder's ``config.json`` as a dict, or None when absent, unreadable or not an object."""
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def is_tl_legacy_config(config: dict[str, Any]) -> bool:
    """A TransformerLens-style config (its field names, no Hugging Face ``model_type``)."""
    return "model_type" not in config and "n_layers" in config and "d_model" in config


def missing_config_keys(config: dict[str, Any]) -> list[str]:
    return [k for k in REQUIRED_KEYS if k not in config]


def weights_file(folder: Path) -> Path:
    """The ``.pth`` to load: the ``*final.pth``, else the only ``.pth``. Raises ModelUnavailable."""
    found = sorted(p for p in folder.glob("*.pth") if p.is_file())
    final = [p for p in found if p.name.endswith("final.pth")]
    if len(final) == 1:
        return final[0]
    if not found:
        raise ModelUnavailable(
            f"{folder} has no weights: no *.pth state dict (a TransformerLens legacy checkpoint) "
            "and no model.safetensors (a native checkpoint)"
        )
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in (final or found)[:6])
    raise ModelUnavailable(f"{folder} has several .pth files and no single *final.pth to choose: {names}")


def is_tl_legacy_folder(folder: Path) -> bool:
    """``config.json`` with the TransformerLens keys and no ``model_type``, and a ``.pth`` file."""
    config = read_config(folder)
    if config is None or not is_tl_legacy_config(config) or missing_config_keys(config):
        return False
    return any(p.is_file() for p in folder.glob("*.pth"))


def _cached_tokenizer_dir(repo: str) -> Path | None:
    """The local Hugging Face cache's snapshot folder holding ``repo``'s tokenizer, or None."""
    from huggingface_hub import try_to_load_from_cache

    for name in CACHED_TOKENIZER_FILES:
        try:
            hit = try_to_load_from_cache(repo, name)
        except ValueError:  # not a valid repo id
            return None
        if isinstance(hit, str):
            return Path(hit).parent
    return None


def _tokenizer_source(folder: Path, config: dict[str, Any]) -> Path:
    """Where the tokenizer loads from: the folder itself, or a cached snapshot folder (a folder
    either way, so any later re-load by the tokenizer's ``name_or_path`` stays offline)."""
    if any((folder / f).is_file() for f in TOKENIZER_FILES):
        return folder
    name = config.get("tokenizer_name")
    if not name:
        raise ModelUnavailable(
            f"{folder} has no tokenizer: no tokenizer files ({' or '.join(TOKENIZER_FILES)}) and no tokenizer_name in "
            f"{CONFIG_FILE}"
        )
    cached = _cached_tokenizer_dir(str(name))
    if cached is None:
        raise ModelUnavailable(
            f"{folder} has no tokenizer files and its tokenizer {name!r} is not in the local Hugging Face cache; "
            f"lenscope does not download: save the tokenizer into the folder "
            f"(AutoTokenizer.from_pretrained({str(name)!r}).save_pretrained(folder)) or download it "
            f"where the hub is reachable (huggingface-cli download {name})"
        )
    return cached


def problem(folder: Path) -> str | None:
    """Why the folder cannot be loaded now (naming the folder and what is missing), or None.

    Cheap (no weights read): for listings."""
    if not (folder / CONFIG_FILE).is_file():
        return f"{folder} has no {CONFIG_FILE}"
    config = read_config(folder)
    if config is None:
        return f"{folder / CONFIG_FILE} is not a readable JSON object"
    missing = missing_config_keys(config)
    if missing:
        needs = ", ".join(REQUIRED_KEYS)
        return f"{folder / CONFIG_FILE} lacks {', '.join(missing)} (a TransformerLens legacy config names {needs})"
    try:
        weights_file(folder)
        _tokenizer_source(folder, config)
    except ModelUnavailable as exc:
        return exc.message
    return None


# ``derive_tl_legacy_config`` reads the config through ``tl_legacy._fetch_json(repo_id, name)``
# (a hub download). While a folder loads, a wrapper answers that call from the folder's
# config.json; every other call (another thread, another repo) goes to the hub function as before.
_LOCAL_CONFIG: ContextVar[tuple[str, dict[str, Any]] | None] = ContextVar("lenscope_tl_legacy_config", default=None)
_INSTALL_LOCK = threading.Lock()


def _install_local_config(module: Any) -> None:
    with _INSTALL_LOCK:
        original = module._fetch_json
        if getattr(original, "lenscope_local", False):
            return

        def fetch_json(repo_id: str, filename: str) -> dict[str, Any]:
            local = _LOCAL_CONFIG.get()
            if local is not None and repo_id == local[0] and filename == CONFIG_FILE:
                return dict(local[1])
            result: dict[str, Any] = original(repo_id, filename)
            return result

        fetch_json.lenscope_local = True  # type: ignore[attr-defined]
        module._fetch_json = fetch_json


def derive_config(folder: Path, config: dict[str, Any]) -> Any:
    """TransformerLens's ``derive_tl_legacy_config`` on the folder's config. The folder's name
    stands for the repo id (TL tells the old SoLU layout by ``_old`` in it, as in
    ``NeelNanda/SoLU_1L_v9_old``)."""
    from transformer_lens.model_bridge.sources import tl_legacy

    _install_local_config(tl_legacy)
    token = _LOCAL_CONFIG.set((folder.name, config))
    try:
        return tl_legacy.derive_tl_legacy_config(folder.name)
    finally:
        _LOCAL_CONFIG.reset(token)


def read_state_dict(folder: Path, path: Path, cfg: Any, dtype: Any) -> dict[str, Any]:
    """The ``.pth`` in TL property format: ``fetch_tl_legacy_state_dict``'s normalisation (dtype,
    then the old-SoLU or minGPT layout converter the config's architecture names)."""
    import torch
    from transformer_lens.model_bridge.sources import tl_legacy

    try:
        state_dict = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a bad file
        raise ModelUnavailable(f"{path} is not a readable torch state dict: {exc}") from exc
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ModelUnavailable(f"{path} is not a state dict (a mapping of names to tensors)")
    state_dict = {k: v.to(dtype) for k, v in state_dict.items()}
    architecture = getattr(cfg, "original_architecture", None)
    try:
        if architecture == "neel-solu-old":
            state_dict = tl_legacy._convert_neel_solu_old_weights(state_dict, cfg)
        elif architecture == "mingpt":
            state_dict = tl_legacy._convert_mingpt_weights(state_dict, cfg)
    except KeyError as exc:
        raise ModelUnavailable(f"{path} lacks {exc} (the {architecture} layout its config names)") from exc
    return state_dict


def _source_keys(legacy: dict[str, Any]) -> dict[str, str]:
    """Each converted key's checkpoint key (by ``convert_tl_checkpoint``'s own suffix table), to
    name what does not fit in the checkpoint's terms."""
    from transformer_lens.utilities.tl_checkpoint_conversion import _SUFFIX_CONVERSIONS

    out = {}
    for key in legacy:
        for old, new, _ in _SUFFIX_CONVERSIONS:
            if key.endswith(old):
                out[key[: -len(old)] + new] = key
                break
    return out


def _misfit(legacy: dict[str, Any], converted: dict[str, Any], expected: dict[str, Any]) -> str | None:
    """The keys that do not fit the model (wrong shape, missing, unexpected), a few of each: a
    checkpoint tensor by its own name and shape, the model's parameter by the bridge's."""
    source = _source_keys(legacy)

    def shape(key: str) -> tuple[int, ...]:
        return tuple(legacy[source[key]].shape if key in source else converted[key].shape)

    def few(items: list[str]) -> str:
        return ", ".join(items[:4]) + (f" (+{len(items) - 4} more)" if len(items) > 4 else "")

    missing = [k for k in expected if k not in converted]
    extra = [source.get(k, k) for k in converted if k not in expected]
    shapes = [
        f"{source.get(k, k)} {shape(k)} (the model's {k} is {tuple(expected[k].shape)})"
        for k, v in converted.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    parts = []
    if shapes:
        parts.append(f"wrong shape: {few(shapes)}")
    if missing:
        parts.append(f"missing: {few(missing)}")
    if extra:
        parts.append(f"not in the model: {few(extra)}")
    return "; ".join(parts) or None


def load_tl_legacy_folder(folder: Path, name: str, device: str | None = None) -> TransformerBridge:
    """Load a TransformerLens legacy checkpoint folder as a ``TransformerBridge`` in eval mode.

    Raises :class:`ModelUnavailable` naming the folder and what is missing or does not fit."""
    import torch

    folder = Path(folder)
    reason = problem(folder)
    if reason:
        raise ModelUnavailable(reason)
    config = read_config(folder)
    assert config is not None
    path = weights_file(folder)
    from transformer_lens.model_bridge.sources.native import boot as boot_native
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint
    from transformers import AutoTokenizer

    dtype = torch.float32
    try:
        cfg = derive_config(folder, config)
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise ModelUnavailable(f"{folder}: {exc}") from exc
    legacy = read_state_dict(folder, path, cfg, dtype)
    try:
        converted = convert_tl_checkpoint(legacy, cfg)
    except ValueError as exc:
        raise ModelUnavailable(f"{path} does not fit {folder / CONFIG_FILE}: {exc}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(_tokenizer_source(folder, config)), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"cannot load the tokenizer of {folder}: {exc}") from exc
    bridge = boot_native(cfg, tokenizer=tokenizer, device=device, dtype=dtype, model_name=name)
    # as boot_tl_legacy: several legacy repos ship no unembed bias (the legacy loader zero-filled it)
    if "unembed.bias" not in converted:
        converted["unembed.bias"] = torch.zeros(cfg.d_vocab, dtype=dtype)
    misfit = _misfit(legacy, converted, bridge.state_dict())  # type: ignore[no-untyped-call]
    if misfit:
        raise ModelUnavailable(f"{path} does not fit {folder / CONFIG_FILE}: {misfit}")
    bridge.load_state_dict(converted, strict=True)  # type: ignore[no-untyped-call]
    bridge.eval()
    return bridge
