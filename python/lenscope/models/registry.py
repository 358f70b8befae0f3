"""Which models lenscope can run, and loading them.

Three sources, tried in this order for a name:

1. **embedded**: the default models shipped inside the package (``models/default``);
2. **local**: a folder on disk: a native checkpoint (``config.json`` +
   ``model.safetensors``), a TransformerLens legacy checkpoint (TL-style ``config.json`` +
   ``*final.pth``, see ``models.tl_legacy``) or a Hugging Face model folder;
3. **hub**: any name TransformerLens knows: legacy TL checkpoints (``gelu-1l``,
   ``NeelNanda/...``) through ``TransformerBridge.boot_tl_legacy``, everything else through
   ``TransformerBridge.boot_transformers``.

Hub models are loaded only from the local Hugging Face cache when the network is unreachable:
"loadable now" is decided from the cache first, so an uncached model fails in milliseconds with
a message naming the model and the missing file rather than retrying for half a minute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lenscope.errors import InvalidInput, ModelUnavailable, UnknownModel
from lenscope.models.native import is_native_checkpoint, load_native, read_native_config
from lenscope.models.shape import ModelShape
from lenscope.models.tl_legacy import is_tl_legacy_config, is_tl_legacy_folder, load_tl_legacy_folder, missing_config_keys
from lenscope.models.tl_legacy import problem as tl_legacy_problem

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
EMBEDDED = {"lenscope-gelu-1l": "gelu-1l", "lenscope-attn-only-1l": "attn-only-1l", "lenscope-gelu-2l": "gelu-2l"}
DEFAULT_MODEL = "lenscope-gelu-1l"
LEGACY_PREFIXES = ("NeelNanda/", "ArthurConmy/", "Baidicoot/")

Source = Literal["embedded", "local", "hub"]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: Source
    loadable: bool
    reason: str = ""  # why it is not loadable now
    shape: ModelShape | None = None  # known without loading for embedded and native models
    repo: str | None = None
    path: str | None = None
    aliases: list[str] = field(default_factory=list)


def _shape_of_native(folder: Path) -> ModelShape:
    c = read_native_config(folder)
    return ModelShape(
        n_layers=c["n_layers"],
        d_model=c["d_model"],
        d_mlp=None if c.get("attn_only") else c["d_mlp"],
        d_vocab=c["d_vocab"],
        n_ctx=c["n_ctx"],
        n_heads=c.get("n_heads"),
    )


def quiet_progress_bars() -> None:
    """Import ``tqdm.auto`` before transformers does, without its notebook warning.

    transformers (through TransformerLens) imports ``tqdm.auto`` at import time; in a notebook
    kernel without ipywidgets that first import prints "TqdmWarning: IProgress not found" to the
    cell's output. Imported here first with that one warning silenced, tqdm falls back to its
    text progress bars as it would anyway, and later imports find it loaded (no warning).
    """
    import contextlib
    import sys
    import warnings

    if "tqdm.auto" in sys.modules:
        return
    with warnings.catch_warnings(), contextlib.suppress(ImportError):
        warnings.filterwarnings("ignore", message="IProgress not found")
        import tqdm.auto  # noqa: F401


@lru_cache(maxsize=1)
def _hub_names() -> tuple[dict[str, str], tuple[str, ...]]:
    """(alias -> repo id, official repo ids) as TransformerLens knows them (import is slow)."""
    quiet_progress_bars()
    from transformer_lens.supported_models import MODEL_ALIASES, OFFICIAL_MODEL_NAMES

    alias = {a: repo for repo, names in MODEL_ALIASES.items() for a in names}
    return alias, tuple(OFFICIAL_MODEL_NAMES)


def _missing_from_cache(repo: str) -> str | None:
    """The first file a load needs that is not in the local HF cache, or None if cached."""
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo, "config.json")
    return None if isinstance(hit, str) else "config.json"


def _embedded_info(name: str) -> ModelInfo:
    folder = DEFAULT_DIR / EMBEDDED[name]
    if not is_native_checkpoint(folder):
        return ModelInfo(name, "embedded", False, f"weights missing under {folder}")
    return ModelInfo(name, "embedded", True, shape=_shape_of_native(folder), path=str(folder))


def resolve(name: str, model_dirs: tuple[Path, ...] = (), allow_paths: bool = True) -> ModelInfo:
    """Find ``name`` without loading it. Raises :class:`UnknownModel`.

    ``allow_paths`` lets an absolute folder path name a model (the CLI); the server turns it
    off so that only folders under its configured ``model_dirs`` are ever read.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownModel("model name is empty")
    if name in EMBEDDED:
        return _embedded_info(name)
    for base in model_dirs:
        folder = (base / name).resolve()
        if folder.is_relative_to(base.resolve()) and folder.is_dir():
            return _local_info(name, folder)
    try:
        path = Path(name).expanduser()
    except RuntimeError:  # "~user/..." of a user this machine does not know: not a folder here
        path = Path(name)
    if allow_paths and path.is_absolute() and path.is_dir():
        return _local_info(name, path.resolve())
    alias, official = _hub_names()
    repo = alias.get(name, name)
    if repo not in official and not repo.startswith(LEGACY_PREFIXES):
        known = ", ".join(EMBEDDED)
        raise UnknownModel(
            f"unknown model {name!r}: not an embedded model ({known}), a model folder, or a TransformerLens model name"
        )
    missing = _missing_from_cache(repo)
    if missing:
        reason = (
            f"{repo} is not in the local Hugging Face cache (missing {missing}); lenscope loads hub models "
            f"from the cache only: download it where the hub is reachable "
            f"(huggingface-cli download {repo}) or pass a local model folder"
        )
        return ModelInfo(name, "hub", False, reason, repo=repo)
    return ModelInfo(name, "hub", True, repo=repo)


HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
HF_TOKENIZER = ("tokenizer.json", "vocab.json", "tokenizer.model")


def _shape_of_hf(config: dict[str, object]) -> ModelShape | None:
    """The shape from a Hugging Face config (GPT-2 names first, then the common ones)."""

    def first(*keys: str) -> int | None:
        for k in keys:
            v = config.get(k)
            if isinstance(v, int) and not isinstance(v, bool):
                return v
        return None

    n_layers, d_model = first("n_layer", "num_hidden_layers"), first("n_embd", "hidden_size", "d_model")
    d_vocab, n_ctx = first("vocab_size"), first("n_positions", "max_position_embeddings")
    if None in (n_layers, d_model, d_vocab, n_ctx):
        return None
    assert n_layers is not None and d_model is not None and d_vocab is not None and n_ctx is not None
    d_mlp = first("n_inner", "intermediate_size") or 4 * d_model
    n_heads = first("n_head", "num_attention_heads")
    return ModelShape(n_layers=n_layers, d_model=d_model, d_mlp=d_mlp, d_vocab=d_vocab, n_ctx=n_ctx, n_heads=n_heads)


def _local_info(name: str, folder: Path) -> ModelInfo:
    """A folder's model: TransformerLens-native, or a Hugging Face ``save_pretrained`` folder; not
    loadable (saying which file is missing) when a part is absent."""
    if is_native_checkpoint(folder):
        return ModelInfo(name, "local", True, shape=_shape_of_native(folder), path=str(folder))
    config_file = folder / "config.json"
    if not config_file.is_file():
        return ModelInfo(name, "local", False, f"{folder} has no config.json", path=str(folder))
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return ModelInfo(name, "local", False, f"{config_file} is not readable JSON: {exc}", path=str(folder))
    if isinstance(config, dict) and is_tl_legacy_config(config):  # a TransformerLens legacy checkpoint
        reason = tl_legacy_problem(folder)
        shape = None if missing_config_keys(config) else _shape_of_native(folder)
        return ModelInfo(name, "local", reason is None, reason or "", shape=shape, path=str(folder))
    if not isinstance(config, dict) or "model_type" not in config:
        return ModelInfo(name, "local", False, f"{config_file} names no model_type (not a Hugging Face model folder)",
                         path=str(folder))  # fmt: skip
    if not any((folder / f).is_file() for f in HF_WEIGHTS):
        return ModelInfo(name, "local", False, f"{folder} has no weights ({' or '.join(HF_WEIGHTS[::2])})", path=str(folder))
    if not any((folder / f).is_file() for f in HF_TOKENIZER):
        return ModelInfo(name, "local", False, f"{folder} has no tokenizer ({' or '.join(HF_TOKENIZER)})", path=str(folder))
    return ModelInfo(name, "local", True, shape=_shape_of_hf(config), path=str(folder))


def _is_sae_folder(folder: Path) -> bool:
    from lenscope.models.sae_registry import is_sae_folder

    return is_sae_folder(folder)


def list_models(model_dirs: tuple[Path, ...] = ()) -> list[ModelInfo]:
    """Embedded models, local model folders, and the hub models already in the local cache."""
    out = [_embedded_info(n) for n in EMBEDDED]
    for base in model_dirs:
        if base.is_dir():
            # SAE folders live beside models: ``lenscope.models.sae_registry`` lists those
            out += [_local_info(p.name, p.resolve()) for p in sorted(base.iterdir()) if p.is_dir() and not _is_sae_folder(p)]
    alias, official = _hub_names()
    names_by_repo: dict[str, list[str]] = {}
    for a, repo in alias.items():
        names_by_repo.setdefault(repo, []).append(a)
    for repo in official:
        if _missing_from_cache(repo) is None:
            out.append(ModelInfo(repo, "hub", True, repo=repo, aliases=names_by_repo.get(repo, [])))
    return out


DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "float64": "float64"}


def parse_dtype(dtype: str | None) -> Any:
    """A ``torch.dtype`` from its name (``float32``, ``float16``, ``bfloat16``, ``float64``); None stays None."""
    if not dtype:
        return None
    import torch

    if dtype not in DTYPES:
        raise InvalidInput(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    return getattr(torch, DTYPES[dtype])


def load_model(
    name: str, device: str | None = None, model_dirs: tuple[Path, ...] = (), allow_paths: bool = True,
    dtype: str | None = None,
) -> TransformerBridge:  # fmt: skip
    """Load ``name`` as a ``TransformerBridge`` in eval mode, on ``device`` (default: CPU) in
    ``dtype`` (default: as stored).

    Raises :class:`UnknownModel` or :class:`ModelUnavailable` (naming the model and what is
    missing) without touching the network for an uncached hub model.
    """
    import torch

    torch_dtype = parse_dtype(dtype)  # checked before anything loads
    # Weights made under inference mode (a caller's, a test's) are inference tensors, and every
    # later gradient through them fails (attribution); a model is loaded outside it, always.
    with torch.inference_mode(False):
        bridge = _load_model(name, device, model_dirs, allow_paths)
        if torch_dtype is not None:
            bridge = bridge.to(torch_dtype)
    return bridge


def _load_model(name: str, device: str | None, model_dirs: tuple[Path, ...], allow_paths: bool) -> TransformerBridge:
    quiet_progress_bars()  # before anything imports transformers
    info = resolve(name, model_dirs, allow_paths)
    if not info.loadable:
        raise ModelUnavailable(f"cannot load model {name!r}: {info.reason}")
    if info.path and is_native_checkpoint(Path(info.path)):
        return load_native(Path(info.path), name, device)
    if info.path and is_tl_legacy_folder(Path(info.path)):
        try:
            return load_tl_legacy_folder(Path(info.path), name, device)
        except ModelUnavailable as exc:
            raise ModelUnavailable(f"cannot load model {name!r}: {exc.message}") from exc
    from transformer_lens.model_bridge import TransformerBridge

    target = info.path or info.repo or name
    try:
        if info.repo and info.repo.startswith(LEGACY_PREFIXES):
            import transformer_lens.model_bridge.sources.tl_legacy  # noqa: F401  (registers boot_tl_legacy)

            bridge = TransformerBridge.boot_tl_legacy(info.repo, device=device)  # type: ignore[attr-defined]
        else:
            bridge = TransformerBridge.boot_transformers(target, device=device)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelUnavailable(f"cannot load model {name!r} from {target}: {exc}") from exc
    bridge.eval()
    return bridge  # type: ignore[no-any-return]
