"""The logit lens against TransformerLens computed directly in the test: one ``run_with_cache`` per
window, the final LayerNorm, ``W_U`` and ``b_U`` by hand, a full sort for ranks."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch

from lenscope.analysis import analyze
from lenscope.engine.windows import plan_windows
from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.logitlens import logit_lens, logit_lens_to_wire
from lenscope.models.registry import load_model
from lenscope.wire_codec import decode_msgpack, encode_msgpack
from tests.core.reference import random_multi_layer, save_tiny_gpt2

CODE = "import os\n\ndef home(path):\n    return os.path.join(path, 'x')\n"


@torch.no_grad()
def lens_rows(model: Any, window_ids: list[int], local: int) -> torch.Tensor:
    """``[layers + 1, d_vocab]`` log-probs at one local position of ``[BOS] + window_ids``."""
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{la}.hook_resid_post" for la in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(
        torch.tensor([[model.tokenizer.bos_token_id, *window_ids]]), names_filter=lambda n: n in names
    )
    resid = torch.stack([cache[n][0, local] for n in names])  # [rows, d_model]
    logits = model.ln_final(resid) @ model.W_U + model.b_U
    return torch.log_softmax(logits.float(), dim=-1)


def check_position(model: Any, got: Any, col: int, ref: torch.Tensor, next_id: int | None) -> None:
    """Column ``col`` of the result against the reference rows of its position."""
    k = got.top_ids.shape[-1]
    top_lp, _ = ref.topk(k, dim=-1)
    np.testing.assert_allclose(got.top_logprobs[:, col], top_lp.numpy(), atol=1e-4)
    # the ids: each one's reference log-prob is the one reported (ties may swap ids)
    np.testing.assert_allclose(ref.gather(1, torch.from_numpy(got.top_ids[:, col]).long()).numpy(), top_lp.numpy(), atol=1e-4)
    if next_id is None:
        assert (got.actual_rank[:, col] == 0).all() and np.isnan(got.actual_logprob[:, col]).all()
        assert got.actual_ids[col] == -1
        return
    assert got.actual_ids[col] == next_id
    np.testing.assert_allclose(got.actual_logprob[:, col], ref[:, next_id].numpy(), atol=1e-4)
    ranks = [int((torch.argsort(row, descending=True) == next_id).nonzero()[0, 0]) + 1 for row in ref]
    assert got.actual_rank[:, col].tolist() == ranks


@pytest.mark.parametrize("which", ["gelu", "attn_only"])
def test_every_position_of_a_one_layer_model(request, which: str) -> None:
    model = request.getfixturevalue(which)
    got = logit_lens(model, CODE)
    ids = got.tokens.ids.tolist()
    n = len(ids)
    assert got.rows == ["embed", "L0"] and got.positions == list(range(n))
    assert got.top_ids.shape == (2, n, 5) and got.actual_rank.shape == (2, n)
    for i in range(n):
        check_position(model, got, i, lens_rows(model, ids, i + 1), ids[i + 1] if i + 1 < n else None)
    # the embedding row is not the output: the lens shows something the output does not
    assert not np.array_equal(got.actual_rank[0], got.actual_rank[1])


@pytest.mark.parametrize("which", ["gelu", "attn_only"])
def test_the_last_row_is_analyze_exactly(request, which: str) -> None:
    model = request.getfixturevalue(which)
    text = CODE * 2
    got = logit_lens(model, text, top_k=10, context="# header\n")
    ref = analyze(model, text, context="# header\n", top_k=10, top_neurons=0).predictions
    # lens position i is analyze's prediction row i + 1
    np.testing.assert_allclose(got.top_logprobs[-1], ref.top_logprobs[1:], atol=1e-4)
    assert (got.top_ids[-1] == ref.top_ids[1:]).all()
    np.testing.assert_allclose(got.actual_logprob[-1, :-1], ref.actual_logprob[1:-1], atol=1e-4)
    assert (got.actual_rank[-1] == ref.actual_rank[1:]).all()


def test_a_random_multi_layer_model_over_several_windows(gelu) -> None:
    """Every row of a 3-layer model, positions from different windows, the last row = analyze."""
    model = random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab)
    text = CODE * 3
    got = logit_lens(model, text)
    ids = got.tokens.ids.tolist()
    n = len(ids)
    assert n > model.cfg.n_ctx and got.rows == ["embed", "L0", "L1", "L2"]
    body = model.cfg.n_ctx - 1
    windows = plan_windows(n, body)
    assert len(windows) > 2
    for i in (0, body - 1, body + 3, n // 2, n - 1):
        w = next(w for w in windows if w.report_from <= i < w.report_to)
        ref = lens_rows(model, ids[w.start : w.stop], w.local(i))
        check_position(model, got, i, ref, ids[i + 1] if i + 1 < n else None)
    out = analyze(model, text, top_k=5, top_neurons=0).predictions
    np.testing.assert_allclose(got.top_logprobs[-1], out.top_logprobs[1:], atol=1e-4)
    assert (got.actual_rank[-1] == out.actual_rank[1:]).all()
    # the middle rows are neither the embedding's nor the output's
    assert not np.allclose(got.actual_logprob[1, :-1], got.actual_logprob[-1, :-1])


def test_asked_positions_equal_the_whole_texts_columns(gelu) -> None:
    """A lens for a few positions (only their windows run) is the same as those of every position."""
    model = random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab)
    text = CODE * 3
    whole = logit_lens(model, text)
    some = logit_lens(model, text, positions=[40, 3, 40])
    assert some.positions == [3, 40]
    for col, i in enumerate(some.positions):
        np.testing.assert_array_equal(some.top_ids[:, col], whole.top_ids[:, i])
        np.testing.assert_allclose(some.actual_logprob[:, col], whole.actual_logprob[:, i], atol=1e-6)
        assert (some.actual_rank[:, col] == whole.actual_rank[:, i]).all()


def test_a_hugging_face_gpt2_folder(gelu, tmp_path) -> None:
    """A ``save_pretrained`` GPT-2 (boot_transformers): every row against the model's own hooks,
    and the last row against the Hugging Face model's own logits."""
    hf = save_tiny_gpt2(tmp_path / "tiny-gpt2", gelu.tokenizer)
    model = load_model(str(tmp_path / "tiny-gpt2"))
    got = logit_lens(model, CODE, positions=[0, 5, 11])
    ids = got.tokens.ids.tolist()
    assert got.rows == ["embed", "L0", "L1"]
    with torch.no_grad():
        hf_lp = torch.log_softmax(hf(torch.tensor([[gelu.tokenizer.bos_token_id, *ids]])).logits[0].float(), -1)
    for col, i in enumerate(got.positions):
        ref = lens_rows(model, ids, i + 1)
        check_position(model, got, col, ref, ids[i + 1])
        np.testing.assert_allclose(got.actual_logprob[-1, col], hf_lp[i + 1, ids[i + 1]].item(), atol=1e-4)


def test_context_conditions_the_lens(gelu) -> None:
    plain = logit_lens(gelu, "return x\n", positions=[0])
    ctx = logit_lens(gelu, "return x\n", positions=[0], context="def f(x):\n")
    assert ctx.tokens.ids.tolist() == plain.tokens.ids.tolist()
    # the block's row reads the context through attention
    assert not np.allclose(ctx.actual_logprob[1], plain.actual_logprob[1])


def test_wire_round_trip(gelu) -> None:
    got = logit_lens(gelu, CODE, positions=[2])
    wire = decode_msgpack(encode_msgpack(logit_lens_to_wire(got)))
    assert wire["rows"] == ["embed", "L0"] and wire["positions"] == [2]
    assert wire["actual_rank"].dtype == np.int32
    np.testing.assert_array_equal(wire["actual_rank"], got.actual_rank)
    np.testing.assert_allclose(wire["top_logprobs"], got.top_logprobs, atol=0.01)
    assert set(wire["strings"]["ids"]) >= set(got.top_ids.reshape(-1).tolist())


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"positions": [99]}, InvalidInput, "position must be between 0 and"),
        ({"positions": []}, InvalidInput, "positions must be a non-empty list"),
        ({"positions": [1.5]}, InvalidInput, "position must be an integer"),
        ({"top_k": 0}, InvalidInput, "top_k must be between 1 and"),
        ({"context": 3}, InvalidInput, "context must be a string"),
    ],
)
def test_bad_input_is_named(gelu, kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        logit_lens(gelu, CODE, **kwargs)


def test_empty_text_and_too_large(gelu) -> None:
    with pytest.raises(InvalidInput, match="text is only whitespace"):
        logit_lens(gelu, "   ")
    with pytest.raises(InputTooLarge, match="positions x 2 rows"):
        logit_lens(gelu, "x = 1\n" * 3_000, top_k=100)


def test_notebook_view_is_a_table_of_the_lens(gelu) -> None:
    from lenscope.notebook import logit_lens as lens_view

    got = logit_lens(gelu, CODE, positions=[3, 4])
    markup = str(lens_view(got, 4))
    assert "<script" not in markup  # plain HTML: offline
    rows = re.findall(r"<tr><th[^>]*>(\w+)</th>(.*?)</tr>", markup)
    assert [name for name, _ in rows] == ["embed", "L0"]
    for r, (_, cells) in enumerate(rows):
        texts = re.findall(r"<td[^>]*>(.*?)</td>", cells)
        assert len(texts) == 5 + 2
        assert texts[5] == str(got.actual_rank[r, 1])  # column 1 is position 4
        assert texts[0].endswith(f"<small>{got.top_logprobs[r, 1, 0]:.2f}</small>")
    with pytest.raises(ValueError, match="position 7 is not in this result"):
        lens_view(got, 7)


def test_the_package_exports_the_function() -> None:
    """``from lenscope import logit_lens`` is the function even after its module was imported (the
    module is ``lenscope.logitlens``: a submodule named like the function would shadow it)."""
    import lenscope
    from lenscope import LogitLens
    from lenscope import logit_lens as exported

    assert exported is logit_lens and callable(lenscope.logit_lens) and LogitLens.__name__ == "LogitLens"
