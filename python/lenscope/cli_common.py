"""What every CLI command reads the same way: a ``--target`` token and an ``--sae`` name."""

from __future__ import annotations

from typing import Any

from lenscope.errors import LenscopeError


def target_id(tokenizer: Any, target: str | None) -> int | None:
    """The id of ``--target`` (the text of exactly one token); None when none is given."""
    if target is None:
        return None
    ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise LenscopeError(f"--target {target!r} is {len(ids)} tokens; give the text of exactly one token")
    return int(ids[0])


def named_sae(name: str | None, model: Any) -> Any:
    """The SAE named on the command line, on the model's device (None when none is named)."""
    if not name:
        return None
    from lenscope.models.sae_registry import load_named_sae

    return load_named_sae(name).to(next(model.parameters()).device)
