"""Hook-point names of a TransformerLens model, built in one place.

The engine, the features and the intervention specs name hook points only through these
functions, so a rename (TransformerLens 4's canonical names) is one change here.
"""

from __future__ import annotations

EMBED = "hook_embed"
POS_EMBED = "hook_pos_embed"
LN_FINAL_SCALE = "ln_final.hook_scale"
UNEMBED_IN = "unembed.hook_in"


def resid_pre(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_pre"


def resid_post(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_post"


def ln1_scale(layer: int) -> str:
    return f"blocks.{layer}.ln1.hook_scale"


def attn_q(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_q"


def attn_k(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_k"


def attn_v(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_v"


def attn_z(layer: int) -> str:
    """Each head's output before ``W_O``: ``[batch, pos, head, d_head]``."""
    return f"blocks.{layer}.attn.hook_z"


def attn_pattern(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_pattern"


def attn_out(layer: int) -> str:
    return f"blocks.{layer}.hook_attn_out"


def mlp_post(layer: int) -> str:
    """The MLP neurons' post-activations: ``[batch, pos, d_mlp]``."""
    return f"blocks.{layer}.mlp.hook_post"


def mlp_out(layer: int) -> str:
    return f"blocks.{layer}.hook_mlp_out"


def layer_of(name: str) -> int | None:
    """The block a ``blocks.L.…`` hook name belongs to (None for embeddings and the final LN)."""
    parts = name.split(".")
    return int(parts[1]) if len(parts) > 2 and parts[0] == "blocks" and parts[1].isdigit() else None


def within_block(name: str) -> str:
    """The part of a block hook's name after ``blocks.L.`` (``mlp.hook_post``)."""
    return name.split(".", 2)[2]


FIRING_ORDER = ("hook_resid_pre", "ln1.hook_scale", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_pattern",
                "attn.hook_z", "hook_attn_out", "mlp.hook_post", "hook_mlp_out", "hook_resid_post")  # fmt: skip
"""The order a block's hook points fire in, for sorting hooks of one forward."""


def firing_order(name: str) -> tuple[int, int]:
    layer = layer_of(name)
    if layer is None:
        raise ValueError(f"{name!r} is not a block hook point")
    return layer, FIRING_ORDER.index(within_block(name))
