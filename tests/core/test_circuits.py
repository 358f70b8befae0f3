"""Head circuits and neuron input sides against direct computations on the whole matrices."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lenscope.circuits import head_circuits, neuron_inputs
from lenscope.errors import InvalidInput
from lenscope.wire_codec import wire_equal
from tests.core.reference import random_multi_layer


def ln_of_tokens(model, ln, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Rows (default: every token's embedding) through a LayerNorm, each alone: torch's own layer_norm."""
    inner = getattr(ln, "_original_component", ln)
    rows = model.W_E.float() if rows is None else rows.float()
    return F.layer_norm(rows, (model.cfg.d_model,), inner.weight.float(), inner.bias.float(), model.cfg.eps)


def full_ov(model, layer: int, head: int) -> torch.Tensor:
    """The whole vocab x vocab OV circuit, written out directly."""
    x = ln_of_tokens(model, model.blocks[layer].ln1)
    out = (x @ model.W_V[layer, head] + model.b_V[layer, head]) @ model.W_O[layer, head]  # [vocab, d_model]
    w = getattr(model.ln_final, "_original_component", model.ln_final).weight.float()
    return ((out - out.mean(-1, keepdim=True)) * w) @ model.W_U


def full_qk(model, layer: int, head: int, rows: torch.Tensor | None = None) -> torch.Tensor:
    """The whole QK circuit of ``rows`` (default: the tokens) as queries and keys, written out directly."""
    x = ln_of_tokens(model, model.blocks[layer].ln1, rows)
    q = x @ model.W_Q[layer, head] + model.b_Q[layer, head]
    k = x @ model.W_K[layer, head] + model.b_K[layer, head]
    return q @ k.T / model.cfg.d_head**0.5


@torch.inference_mode()
def test_ov_qk_and_copying_against_the_full_matrices(attn_only) -> None:
    layer, head = 0, 3
    got = head_circuits(attn_only, layer, head, top=10)
    ov = full_ov(attn_only, layer, head)
    values, flat = ov.reshape(-1).topk(10)
    vocab = ov.shape[1]
    assert [(i, j) for i, j, _ in got.ov_top] == [(int(f // vocab), int(f % vocab)) for f in flat.tolist()]
    assert np.allclose([v for _, _, v in got.ov_top], values.numpy(), atol=1e-3)
    assert got.ov_bottom[0][2] == pytest.approx(float(ov.min()), abs=1e-3)
    x = ln_of_tokens(attn_only, attn_only.blocks[layer].ln1)
    q = x @ attn_only.W_Q[layer, head] + attn_only.b_Q[layer, head]
    k = x @ attn_only.W_K[layer, head] + attn_only.b_K[layer, head]
    qk = q @ k.T / attn_only.cfg.d_head**0.5
    assert got.qk_top[0][2] == pytest.approx(float(qk.max()), abs=1e-3)
    i, j, _ = got.qk_top[0]
    assert float(qk[i, j]) == pytest.approx(float(qk.max()), abs=1e-4)
    # the eigenvalues' sum is the full circuit's trace
    assert got.eigenvalues.sum().real == pytest.approx(float(torch.trace(ov.double())), rel=1e-3)
    assert -1 <= got.copying_score <= 1 and 0 <= got.positive_share <= 1


@torch.inference_mode()
def test_eigenvalues_equal_the_full_circuits_on_a_small_model(gelu) -> None:
    """On a model small enough to take every eigenvalue of the vocab x vocab circuit directly."""
    from lenscope.models.native import new_native_model, wrap_native

    config = dict(d_model=16, n_layers=1, n_heads=2, d_head=4, d_mlp=32, n_ctx=16, d_vocab=200, act_fn="gelu_new",
                  normalization_type="LN", seed=1)  # fmt: skip
    model = wrap_native(new_native_model(config), config, gelu.tokenizer, "small").eval()
    got = head_circuits(model, 0, 1, top=5)
    full = torch.linalg.eigvals(full_ov(model, 0, 1).double()).numpy()
    big = np.sort_complex(full[np.abs(full) > 1e-6])
    assert len(big) == 4 and np.allclose(np.sort_complex(got.eigenvalues), big, atol=1e-6)
    assert got.positive_share == pytest.approx(float((big.real > 0).mean()))
    assert got.copying_score == pytest.approx(float(big.sum().real / np.abs(big).sum()), abs=1e-6)


@torch.inference_mode()
def test_neuron_inputs_and_bad_input(gelu, attn_only) -> None:
    x = ln_of_tokens(gelu, gelu.blocks[0].ln2)
    pre = x @ gelu.W_in[0, :, 77] + gelu.b_in[0, 77]
    got = neuron_inputs(gelu, 0, 77, top=5)
    assert [i for i, _ in got] == pre.topk(5).indices.tolist()
    assert np.allclose([v for _, v in got], pre.topk(5).values.numpy(), atol=1e-4)
    with pytest.raises(InvalidInput, match="attention-only"):
        neuron_inputs(attn_only, 0, 1)
    with pytest.raises(InvalidInput, match="head must be between 0 and 7"):
        head_circuits(attn_only, 0, 8)
    with pytest.raises(InvalidInput, match="neuron index must be between"):
        neuron_inputs(gelu, 0, 5000)


@pytest.mark.parametrize("n,m,k", [(1500, 300, 20), (600, 50, 7), (10, 4, 20)])  # 3 blocks, 2, and fewer entries than k
def test_extreme_pairs_equal_a_top_k_over_the_whole_matrix(n: int, m: int, k: int) -> None:
    """The row-wise, pruned search finds exactly the whole matrix's k largest and k smallest entries."""
    from lenscope.circuits import _extreme_pairs

    g = torch.Generator().manual_seed(n)
    rows, right, bias = torch.randn(n, 8, generator=g), torch.randn(8, m, generator=g), torch.randn(m, generator=g)
    rows[-3:] *= 5  # the largest entries in the last block: the running top-k has to give way
    full = (rows @ right + bias).reshape(-1)
    top, bottom = _extreme_pairs(rows, right, bias, k)
    for got, largest in ((top, True), (bottom, False)):
        values = full.topk(min(k, full.numel()), largest=largest).values
        assert [v for _, _, v in got] == pytest.approx(values.tolist(), abs=1e-5)
        assert all(float(full[i * m + j]) == pytest.approx(v, abs=1e-5) for i, j, v in got)  # each at its place
        assert len({(i, j) for i, j, _ in got}) == len(got)


def test_a_second_head_card_is_served_from_cache_and_an_edit_computes_it_again(attn_only) -> None:
    import copy

    from lenscope.circuits import HEAD_CARDS, head_card_wire

    model = copy.deepcopy(attn_only)  # edited below
    first = head_card_wire(model, "m", 0, 3, top=5)
    hits, misses = HEAD_CARDS.hits, HEAD_CARDS.misses
    again = head_card_wire(model, "m", 0, 3, top=5)
    assert (HEAD_CARDS.hits, HEAD_CARDS.misses) == (hits + 1, misses) and wire_equal(again, first)
    again["ov_top"].clear()  # a caller's changes stay its own
    assert wire_equal(head_card_wire(model, "m", 0, 3, top=5), first)
    other = head_card_wire(model, "m", 0, 4, top=5)
    assert HEAD_CARDS.misses == misses + 1 and not wire_equal(other, first)
    with torch.no_grad():  # as a kernel edits a model it attached
        for name, p in model.named_parameters():
            if "W_V" in name or name.endswith(("v.weight", "v._original_component.weight")):
                p.mul_(-1)
    edited = head_card_wire(model, "m", 0, 3, top=5)
    assert HEAD_CARDS.misses == misses + 2
    assert edited["ov_top"] != first["ov_top"]
    assert wire_equal(edited, head_card_wire(model, "m", 0, 3, top=5)) and HEAD_CARDS.misses == misses + 2


# --- issue #25 item 3: frequent tokens, per-token rows, positional QK ---------------------------


@pytest.fixture(scope="module")
def random3(gelu):
    return random_multi_layer(gelu.tokenizer, 400, n_ctx=40)  # 400 tokens: every eigenvalue is taken directly


def pool_of(model, name: str) -> np.ndarray:
    from lenscope.headscores import frequent_tokens, shipped_token_counts

    counts = shipped_token_counts(name, model.cfg.d_vocab)
    if counts is not None:  # the shipped corpus' 1,000 most frequent tokens, counted here
        counts = counts.astype(np.float64)
        counts[[t for t in model.tokenizer.all_special_ids if t < len(counts)]] = -1
        order = np.argsort(-counts, kind="stable")
        want = order[counts[order] > 0][:1000]
        assert np.array_equal(frequent_tokens(model, 1000, counts=shipped_token_counts(name, model.cfg.d_vocab)), want)
    return frequent_tokens(model, 1000, counts=counts)


MODELS = [("gelu", "lenscope-gelu-1l"), ("attn_only", "lenscope-attn-only-1l"), ("gelu2", "lenscope-gelu-2l"),
          ("random3", "random-3l")]  # fmt: skip


@pytest.mark.parametrize("fixture,name", MODELS)
@torch.inference_mode()
def test_frequent_token_circuits_rows_and_positional_qk_equal_the_weights(request, fixture: str, name: str) -> None:
    """Every number of a head card, against matrices written out here from W_E, W_pos, W_Q, W_K,
    W_V, W_O, W_U and the LayerNorms' weights (torch's layer_norm), for the last head of the
    last layer and the first head of the first."""
    from lenscope.circuits import head_card_wire, vocab_pool

    model = request.getfixturevalue(fixture)
    pool = pool_of(model, name)
    assert np.array_equal(vocab_pool(model, name), pool) and vocab_pool(model, name, "all") is None
    idx = torch.as_tensor(pool)
    for layer, head in ((model.cfg.n_layers - 1, model.cfg.n_heads - 1), (0, 0)):
        ov = full_ov(model, layer, head).double()
        qk = full_qk(model, layer, head)
        source, query = int(pool[3]), int(pool[7])
        card = head_card_wire(model, name, layer, head, top=6, source=str(source), query=query)
        # OV / QK pairs over the frequent tokens only
        sub = ov[idx][:, idx]
        values, flat = sub.reshape(-1).topk(6)
        n = len(pool)
        assert [(p["source"], p["target"]) for p in card["ov_top"]] == [
            (int(pool[f // n]), int(pool[f % n])) for f in flat.tolist()
        ]
        assert [p["value"] for p in card["ov_top"]] == pytest.approx(values.tolist(), abs=1e-3)
        assert card["ov_bottom"][0]["value"] == pytest.approx(float(sub.min()), abs=1e-3)
        qsub = qk[idx][:, idx]
        assert [p["value"] for p in card["qk_top"]] == pytest.approx(qsub.reshape(-1).topk(6).values.tolist(), abs=1e-3)
        for p in card["qk_top"]:
            assert float(qk[p["source"], p["target"]]) == pytest.approx(p["value"], abs=1e-3)

        # copying score on the frequent tokens and on the whole vocabulary: every eigenvalue of the
        # full matrices on the small random model; elsewhere their sum, the full matrix's trace
        def copying(m: torch.Tensor) -> float:
            e = torch.linalg.eigvals(m).numpy()
            e = e[np.abs(e) > 1e-6 * np.abs(e).max()]
            return float(e.sum().real / np.abs(e).sum())

        assert card["tokens_read"] == n and card["vocab"] == "frequent"
        if fixture == "random3":
            assert card["copying_score_frequent"] == pytest.approx(copying(sub), abs=1e-4)
            assert card["copying_score"] == pytest.approx(copying(ov), abs=1e-4)
        else:
            frequent = head_circuits(model, layer, head, 1, pool)
            assert card["copying_score_frequent"] == pytest.approx(frequent.copying_score)
            assert frequent.eigenvalues.sum().real == pytest.approx(float(torch.trace(sub)), rel=1e-3, abs=1e-3)
            whole = head_circuits(model, layer, head, 1)
            assert card["copying_score"] == pytest.approx(whole.copying_score)
            assert whole.eigenvalues.sum().real == pytest.approx(float(torch.trace(ov)), rel=1e-3, abs=1e-3)
        # per-token rows: what it writes when it attends to `source`, which keys `query` looks for
        row = ov[source, idx]
        assert [r["id"] for r in card["source_row"]["boosted"]] == [int(pool[j]) for j in row.topk(6).indices.tolist()]
        assert [r["id"] for r in card["source_row"]["suppressed"]] == [int(pool[j]) for j in row.topk(6, largest=False).indices]
        assert [r["value"] for r in card["source_row"]["boosted"]] == pytest.approx(row.topk(6).values.tolist(), abs=1e-3)
        keys = qk[query, idx]
        assert [r["id"] for r in card["query_row"]["keys"]] == [int(pool[j]) for j in keys.topk(6).indices.tolist()]
        assert [r["value"] for r in card["query_row"]["keys"]] == pytest.approx(keys.topk(6).values.tolist(), abs=1e-3)
        # positional QK: W_pos rows through LN1, W_Q and W_K
        p = min(model.cfg.n_ctx, 256)
        want = full_qk(model, layer, head, model.W_pos[:p]).numpy()
        got = card["positional"]["scores"]
        assert got.shape == (p, p) and card["positional"]["capped"] is False
        lower = np.tril(np.ones((p, p), dtype=bool))
        np.testing.assert_allclose(got[lower], want[lower], atol=1e-3, rtol=1e-4)
        assert np.isnan(got[~lower]).all()
        i = np.arange(1, p)
        assert card["positional"]["summary"]["previous"] == pytest.approx(float(want[i, i - 1].mean()), abs=1e-3)
        # the whole vocabulary on request
        whole = head_card_wire(model, name, layer, head, top=6, vocab="all")
        values, flat = ov.reshape(-1).topk(6)
        assert [(p["source"], p["target"]) for p in whole["ov_top"]][:3] == [
            (f // ov.shape[1], f % ov.shape[1]) for f in flat.tolist()
        ][:3]
        assert (
            whole["copying_score"] == card["copying_score"] and whole["copying_score_frequent"] == card["copying_score_frequent"]
        )
        assert whole["tokens_read"] == model.cfg.d_vocab and whole["source_row"] is None


@torch.inference_mode()
def test_neuron_inputs_over_frequent_tokens(gelu) -> None:
    from lenscope.circuits import neuron_inputs_wire

    pool = pool_of(gelu, "lenscope-gelu-1l")
    pre = ln_of_tokens(gelu, gelu.blocks[0].ln2) @ gelu.W_in[0, :, 77] + gelu.b_in[0, 77]
    got = neuron_inputs_wire(gelu, "lenscope-gelu-1l", 0, 77, top=5)
    sub = pre[torch.as_tensor(pool)]
    assert [e["id"] for e in got["inputs"]] == [int(pool[j]) for j in sub.topk(5).indices.tolist()]
    assert [e["value"] for e in got["inputs"]] == pytest.approx(sub.topk(5).values.tolist(), abs=1e-4)
    whole = neuron_inputs_wire(gelu, "lenscope-gelu-1l", 0, 77, top=5, vocab="all")
    assert [e["id"] for e in whole["inputs"]] == pre.topk(5).indices.tolist() and whole["tokens_read"] == gelu.cfg.d_vocab


@torch.inference_mode()
def test_positional_qk_is_capped_for_long_contexts(gelu) -> None:
    from lenscope.circuits import POSITIONS_CAPPED, head_card_wire, positional_qk

    long = random_multi_layer(gelu.tokenizer, 300, n_ctx=300, seed=2)
    scores = positional_qk(long, 0, 0)
    assert scores.shape == (POSITIONS_CAPPED, POSITIONS_CAPPED)
    np.testing.assert_allclose(scores[:20, :20], positional_qk(long, 0, 0, positions=20), atol=1e-5, equal_nan=True)
    card = head_card_wire(long, "long", 0, 0, top=3)
    assert card["positional"]["capped"] is True and card["positional"]["n_ctx"] == 300


def test_token_questions_and_bad_input(gelu, attn_only) -> None:
    from lenscope.circuits import head_card_wire, neuron_inputs_wire, token_id

    assert token_id(gelu, " for", "query") == gelu.tokenizer(" for", add_special_tokens=False)["input_ids"][0]
    assert token_id(gelu, "17", "source") == 17 and token_id(gelu, 18, "source") == 18
    with pytest.raises(InvalidInput, match="source: unknown token ' for the': it is 2 tokens"):
        head_card_wire(attn_only, "lenscope-attn-only-1l", 0, 1, source=" for the")
    with pytest.raises(InvalidInput, match=r"query: token id 99999 is not in the vocabulary \(0 to 4095\)"):
        head_card_wire(attn_only, "lenscope-attn-only-1l", 0, 1, query="99999")
    with pytest.raises(InvalidInput, match="vocab must be 'frequent' or 'all'"):
        head_card_wire(attn_only, "lenscope-attn-only-1l", 0, 1, vocab="rare")
    with pytest.raises(InvalidInput, match="head must be between 0 and 7"):
        head_card_wire(attn_only, "lenscope-attn-only-1l", 0, 8)
    with pytest.raises(InvalidInput, match="vocab must be"):
        neuron_inputs_wire(gelu, "lenscope-gelu-1l", 0, 1, vocab="x")


def test_lenscope_head_cli_is_the_card_and_the_probe(gelu2) -> None:
    """`lenscope head L0.H1 --model lenscope-gelu-2l --json`: the head card's pairs, copying scores
    and positional summary, and the head's role scores on the induction probe (the core's)."""
    import json
    import subprocess
    import sys

    from lenscope.circuits import head_card_wire
    from lenscope.cli_heads import parse_head
    from lenscope.headscores import frequent_tokens, induction_probe, shipped_token_counts

    assert parse_head("L1.H3") == parse_head("1.3") == parse_head("l1h3") == (1, 3)
    with pytest.raises(argparse.ArgumentTypeError, match=r"L1\.H3"):
        parse_head("13")
    args = ["head", "L0.H1", "--model", "lenscope-gelu-2l", "--query", " for", "--top", "5", "--json"]
    out = subprocess.run([sys.executable, "-m", "lenscope.cli", *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    card = head_card_wire(gelu2, "lenscope-gelu-2l", 0, 1, top=5, query=" for")
    assert got["ov_top"] == card["ov_top"] and got["query_row"] == card["query_row"]
    assert got["copying_score_frequent"] == pytest.approx(card["copying_score_frequent"])
    assert got["positional"]["summary"] == pytest.approx(card["positional"]["summary"]) and "scores" not in got["positional"]
    pool = frequent_tokens(gelu2, counts=shipped_token_counts("lenscope-gelu-2l", gelu2.cfg.d_vocab))
    probe = induction_probe(gelu2, pool=pool)
    assert got["roles"]["previous_token"] == pytest.approx(float(probe.scores["previous_token"][0, 1]), abs=1e-5)
    assert got["role"]["role"] == probe.role_of(0, 1)[0]
    bad = subprocess.run([sys.executable, "-m", "lenscope.cli", "head", "L0.H9", "--model", "lenscope-gelu-2l"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode != 0 and "head must be between 0 and 7" in bad.stderr + bad.stdout
