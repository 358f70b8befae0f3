"""The shipped default models: loadable offline, and as good on held-out files as the card says."""

from __future__ import annotations

import json

import pytest
import torch

from lenscope.models.heldout import eval_windows, model_loss, ngram_baselines, token_stream
from lenscope.models.registry import DEFAULT_DIR, list_models
from lenscope.models.stdlib_corpus import split_files

CARD = json.loads((DEFAULT_DIR / "metrics.json").read_text(encoding="utf-8"))


def test_default_files_are_small_and_tokenizer_loads_with_autotokenizer() -> None:
    from transformers import AutoTokenizer

    size = sum(p.stat().st_size for p in DEFAULT_DIR.rglob("*") if p.is_file())
    assert size < 40 * 2**20  # all three models, the tokenizer and the card
    tok = AutoTokenizer.from_pretrained(str(DEFAULT_DIR / "tokenizer"))
    assert tok.decode(tok("def f(x):\n    return x")["input_ids"]) == "def f(x):\n    return x"
    assert (DEFAULT_DIR / "MODEL_CARD.md").is_file()


def test_the_default_models_are_listed_and_loadable() -> None:
    models = {m.name: m for m in list_models()}
    for name in ("lenscope-gelu-1l", "lenscope-attn-only-1l", "lenscope-gelu-2l"):
        assert models[name].loadable and models[name].shape is not None
    assert models["lenscope-attn-only-1l"].shape.d_mlp is None  # type: ignore[union-attr]
    assert models["lenscope-gelu-2l"].shape.n_layers == 2  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def held_out() -> tuple[torch.Tensor, object]:
    split = split_files()
    listed = (DEFAULT_DIR / "held_out_files.txt").read_text(encoding="utf-8").split()
    # The split is recomputed from this Python's stdlib; it must be the one trained against.
    present = [f for f in listed if (split.root / f).is_file()]
    if len(present) < len(listed) * 0.8:
        pytest.skip("this Python's stdlib differs too much from the one the models were trained on")
    return split, present  # type: ignore[return-value]


def test_gelu_2l_beats_gelu_1l_beats_attention_only_and_all_beat_bigram(gelu, gelu2, attn_only, held_out) -> None:
    split, files = held_out
    tok = gelu.tokenizer
    bos = tok.bos_token_id

    def encode(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    held = token_stream(encode, split.root, files, bos)
    train = token_stream(encode, split.root, [f for f in split.train if f not in set(files)], bos)
    windows = eval_windows(held, gelu.cfg.n_ctx, bos)
    base = ngram_baselines(train, windows, gelu.cfg.d_vocab)
    loss_gelu = model_loss(gelu, windows)
    loss_attn = model_loss(attn_only, windows)
    loss_gelu2 = model_loss(gelu2, windows)
    assert loss_gelu2 < loss_gelu < loss_attn < base.bigram < base.unigram
    # and the card reports what the shipped weights really do
    card = CARD["held_out_loss"]
    assert abs(loss_gelu - card["gelu-1l"]) < 0.01 and abs(loss_attn - card["attn-only-1l"]) < 0.01
    assert abs(loss_gelu2 - card["gelu-2l"]) < 0.01
    assert abs(base.bigram - card["bigram"]) < 0.01


def test_a_model_loaded_under_inference_mode_still_takes_gradients() -> None:
    """A model first loaded inside ``torch.inference_mode`` (a caller's, a test's) has ordinary
    weights: a later gradient through it (attribution) works."""
    from lenscope.models.registry import load_model

    with torch.inference_mode():
        model = load_model("lenscope-attn-only-1l")
    assert not any(p.is_inference() for p in model.parameters())
    logits = model(torch.tensor([[0, 5, 6]]))
    logits[0, -1, 1].backward()
