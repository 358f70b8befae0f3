"""Which SAEs there are: the one shipped under ``models/saes/`` and any SAE folder directly
under a server's ``model_dirs`` (either format, see :mod:`lenscope.sae`).

Listing reads each folder (shapes are checked against the weights), and a broken folder is
listed with its problem instead of breaking the listing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lenscope.errors import UnknownModel
from lenscope.sae import LENSCOPE_META, SaeUnavailable, SparseAutoencoder, load_sae, sae_format

SHIPPED_SAES_DIR = Path(__file__).resolve().parent / "saes"


@dataclass(frozen=True)
class SaeInfo:
    name: str
    model: str | None  # the model it reads, when the folder says
    hook_point: str | None
    d_in: int | None
    d_sae: int | None
    k: int | None
    format: str | None
    loadable: bool
    reason: str = ""
    path: str | None = None
    shipped: bool = False


def is_sae_folder(folder: Path) -> bool:
    """``folder`` holds SAE weights (either format), or is a ``sparsify`` run folder of them; a
    missing ``cfg.json`` then makes it a broken SAE, listed with that problem."""
    if sae_format(folder):
        return True
    try:
        return any(p.is_dir() and sae_format(p) for p in folder.iterdir())
    except OSError:
        return False


def _info(folder: Path, shipped: bool) -> SaeInfo:
    name = folder.name
    try:
        meta = json.loads((folder / LENSCOPE_META).read_text(encoding="utf-8")) if (folder / LENSCOPE_META).is_file() else {}
        name = str(meta.get("name") or name)
        sae = load_sae(folder, name=name, label=name if shipped else None)
    except SaeUnavailable as exc:
        return SaeInfo(name, None, None, None, None, None, None, False, exc.message, str(folder), shipped)
    except (OSError, ValueError) as exc:
        return SaeInfo(name, None, None, None, None, None, None, False, f"{folder}/{LENSCOPE_META}: {exc}", str(folder), shipped)
    return SaeInfo(name, sae.model, sae.hook_point, sae.d_in, sae.d_sae, sae.k, sae.format, True, "", str(folder), shipped)


def list_saes(model_dirs: tuple[Path, ...] = ()) -> list[SaeInfo]:
    """Shipped SAEs first, then those under ``model_dirs`` (a folder is an SAE when it, or one of its
    subfolders, has ``sae.safetensors`` or ``sae_weights.safetensors`` beside a ``cfg.json``)."""
    out: list[SaeInfo] = []
    for base, shipped in [(SHIPPED_SAES_DIR, True), *((Path(d), False) for d in model_dirs)]:
        try:
            children = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            continue
        for child in children:
            if is_sae_folder(child):
                out.append(_info(child, shipped))
    return out


def find_sae(name: str, model_dirs: tuple[Path, ...] = ()) -> SaeInfo:
    for info in list_saes(model_dirs):
        if info.name == name:
            return info
    known = ", ".join(i.name for i in list_saes(model_dirs)) or "none"
    raise UnknownModel(f"no SAE named {name!r} (available: {known})")


def load_named_sae(name: str, model_dirs: tuple[Path, ...] = ()) -> SparseAutoencoder:
    info = find_sae(name, model_dirs)
    if not info.loadable or info.path is None:
        raise SaeUnavailable(f"SAE {name!r} cannot be loaded: {info.reason}")
    return load_sae(Path(info.path), name=name)
