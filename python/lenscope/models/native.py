"""Build and load TransformerLens-native models (the shipped default models are of this kind).

A native checkpoint folder holds ``config.json`` (a ``TransformerBridgeConfig`` as a dict),
``model.safetensors`` (the plain ``NativeModel`` state dict) and a ``tokenizer`` folder (or a
path to one in ``config.json['tokenizer_dir']``, relative to the folder).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def is_native_checkpoint(folder: Path) -> bool:
    """A TransformerLens-native folder: its config names TransformerLens fields (``n_layers``), not a
    Hugging Face ``model_type`` (a ``save_pretrained`` folder also has ``model.safetensors``)."""
    if not ((folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()):
        return False
    try:
        config = read_native_config(folder)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "n_layers" in config and "model_type" not in config


def read_native_config(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    return data


def tokenizer_dir(folder: Path, config: dict[str, Any]) -> Path:
    return (folder / str(config.get("tokenizer_dir", "tokenizer"))).resolve()


def bridge_config(config: dict[str, Any]) -> Any:
    from transformer_lens.config import TransformerBridgeConfig

    fields = {k: v for k, v in config.items() if k not in {"tokenizer_dir", "lenscope"}}
    return TransformerBridgeConfig(architecture="TransformerLensNative", **fields)


def new_native_model(config: dict[str, Any]) -> Any:
    """A randomly initialised ``NativeModel`` (plain torch module: what training optimises)."""
    from transformer_lens.model_bridge.sources.native import NativeModel, initialize_native_model

    cfg = bridge_config(config)
    model = NativeModel(cfg)
    initialize_native_model(model, cfg)
    return model


def wrap_native(model: Any, config: dict[str, Any], tokenizer: Any, name: str) -> TransformerBridge:
    """Wrap a ``NativeModel`` in a ``TransformerBridge`` so hooks and caches work as for any model."""
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module

    return build_bridge_from_module(
        model,
        architecture="TransformerLensNative",
        tl_config=bridge_config(config),
        tokenizer=tokenizer,
        model_name=name,
    )


def save_native(model: Any, config: dict[str, Any], folder: Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` (the inverse of :func:`load_native`)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def load_native(folder: Path, name: str, device: str | None = None) -> TransformerBridge:
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    config = read_native_config(folder)
    # Loaded from a folder so the bridge's re-load by ``name_or_path`` stays offline.
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir(folder, config)))
    model = new_native_model(config)
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    model.eval()
    if device:
        model.to(device)
    bridge = wrap_native(model, config, tokenizer, name)
    bridge.eval()
    return bridge
