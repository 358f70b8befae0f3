"""The shipped SAE: small, listed, encoding as ``sparsify`` does, and as good on the held-out
files as its card says (L0, explained variance, the loss increase when spliced in)."""

from __future__ import annotations

import json

import pytest
import torch

from lenscope.models.heldout import eval_windows, token_stream
from lenscope.models.registry import DEFAULT_DIR
from lenscope.models.sae_registry import SHIPPED_SAES_DIR, list_saes, load_named_sae
from lenscope.models.stdlib_corpus import split_files
from lenscope.sae_metrics import sae_metrics

NAME = "lenscope-gelu-1l-mlp-topk"
FOLDER = SHIPPED_SAES_DIR / NAME
CARD = json.loads((FOLDER / "metrics.json").read_text(encoding="utf-8"))


def test_it_is_small_listed_and_carded() -> None:
    size = sum(p.stat().st_size for p in FOLDER.rglob("*") if p.is_file())
    assert size < 10 * 2**20
    info = {s.name: s for s in list_saes()}[NAME]
    assert (info.model, info.hook_point, info.d_in, info.d_sae, info.format, info.loadable) == (
        "lenscope-gelu-1l", "blocks.0.mlp.hook_post", 1024, CARD["d_sae"], "sparsify", True)  # fmt: skip
    assert (FOLDER / "SAE_CARD.md").is_file()


def test_features_equal_sparsifys_own_encode(gelu) -> None:
    from sparsify import SparseCoder

    coder = SparseCoder.load_from_disk(FOLDER / "blocks.0.mlp.hook_post").float()
    sae = load_named_sae(NAME)
    ids = gelu.tokenizer("def f(items):\n    return sorted(set(items))[:3]\n", add_special_tokens=False)["input_ids"]
    _, cache = gelu.run_with_cache(torch.tensor([[gelu.tokenizer.bos_token_id, *ids]]), names_filter=["blocks.0.mlp.hook_post"])
    x = cache["blocks.0.mlp.hook_post"][0, 1:].float()
    out = coder.encode(x)
    dense = torch.zeros(len(x), sae.d_sae).scatter_(-1, out.top_indices, out.top_acts).detach()
    torch.testing.assert_close(sae.encode(x), dense, atol=1e-5, rtol=1e-4)


def test_the_card_reports_what_the_weights_do_on_held_out_files(gelu) -> None:
    split = split_files()
    listed = (DEFAULT_DIR / "held_out_files.txt").read_text(encoding="utf-8").split()
    present = [f for f in listed if (split.root / f).is_file()]
    if len(present) < len(listed) * 0.8:
        pytest.skip("this Python's stdlib differs too much from the one the SAE was measured on")
    tok = gelu.tokenizer

    def encode(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    windows = eval_windows(token_stream(encode, split.root, present, tok.bos_token_id), gelu.cfg.n_ctx, tok.bos_token_id)
    got = sae_metrics(gelu, load_named_sae(NAME), windows)
    card = CARD["held_out"]
    assert got["tokens"] == card["tokens"]
    assert abs(got["l0"] - card["l0"]) < 0.05
    assert abs(got["explained_variance"] - card["explained_variance"]) < 2e-3
    assert abs(got["loss_increase"] - card["loss_increase"]) < 2e-3
    assert abs(got["dead_share"] - card["dead_share"]) < 2e-3
    # and the SAE is worth splicing in: most of the MLP's effect on the loss is recovered
    assert got["loss_clean"] < got["loss_spliced"] < got["loss_zero_ablated"] and got["loss_recovered"] > 0.5
