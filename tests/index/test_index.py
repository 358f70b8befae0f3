"""The neuron index against brute force, its storage, and lookups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lenscope.index.build import BuildOptions, IndexCancelled, build_index
from lenscope.index.card import neuron_card, neurons_for_token
from lenscope.index.corpus import read_documents
from lenscope.index.store import IndexNotFound, changed_files, open_index, write_index

WINDOW = 32  # small windows: several per document, so "one example per window" matters


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    (root / "a.py").write_text("def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n" * 3)
    (root / "b.md").write_text("# Notes\n\nThe quick brown fox jumps over the lazy dog. 😀 日本語\n" * 2)
    (root / "pkg").mkdir()
    (root / "pkg" / "c.py").write_text("import os\nfor name in os.listdir('.'):\n    print(name)\n")
    (root / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    return root


def brute_force(model, docs, k: int):
    """Every window's activations directly (run_with_cache), then per-neuron top-k over windows."""
    tok, bos, body = model.tokenizer, model.tokenizer.bos_token_id, WINDOW - 1
    maxima, positions, windows, all_acts = [], [], [], []
    for d, doc in enumerate(docs):
        ids = tok(doc.text, add_special_tokens=False)["input_ids"]
        for s in range(0, len(ids), body):
            chunk = ids[s : s + body]
            _, cache = model.run_with_cache(torch.tensor([[bos, *chunk]]), names_filter=lambda n: n.endswith("mlp.hook_post"))
            acts = cache["blocks.0.mlp.hook_post"][0, 1:].float()  # [n, N]
            all_acts.append(acts)
            v, p = acts.max(dim=0)
            maxima.append(v)
            positions.append(p)
            windows.append((d, s))
    maxima_t, positions_t = torch.stack(maxima), torch.stack(positions)  # [W, N]
    top_v, top_w = maxima_t.T.topk(k, dim=1)
    top_p = positions_t.T.gather(1, top_w)
    return top_v, top_w, top_p, torch.cat(all_acts), windows


def test_top_k_equals_brute_force_for_every_neuron(gelu, corpus: Path) -> None:
    docs, skipped = read_documents(corpus, ["."])
    assert {s.path for s in skipped} == {"blob.bin", "latin1.txt"}  # listed, not fatal
    k = 5
    index = build_index(gelu, docs, BuildOptions(k=k, window=WINDOW, batch_windows=3))
    top_v, top_w, top_p, acts, windows = brute_force(gelu, docs, k)
    assert [tuple(w[:2]) for w in index.windows.tolist()] == windows
    np.testing.assert_allclose(index.top_values, top_v.numpy(), atol=1e-5)
    # same windows and positions, wherever the values are not tied
    distinct = np.abs(np.diff(top_v.numpy(), axis=1)).min(axis=1) > 1e-5
    assert distinct.mean() > 0.9
    np.testing.assert_array_equal(index.top_windows[distinct], top_w.numpy()[distinct])
    np.testing.assert_array_equal(index.top_positions[distinct], top_p.numpy()[distinct])
    # the stored context holds the maximum at its centre
    np.testing.assert_allclose(index.top_context[:, :, index.before].astype(np.float32), index.top_values, atol=1e-2)
    # statistics over every token of the corpus
    assert index.count == acts.shape[0]
    np.testing.assert_allclose(index.mean, acts.mean(dim=0).numpy(), atol=1e-5)
    np.testing.assert_allclose(index.max, acts.max(dim=0).values.numpy(), atol=1e-6)
    assert (index.hist.sum(axis=1) == acts.shape[0]).all()
    # bins [edge_i, edge_i+1) with an underflow and an overflow bin: np.digitize's convention
    from lenscope.index.build import HIST_EDGES

    bins = np.digitize(acts.numpy(), HIST_EDGES)  # [tokens, N] in 0 .. len(edges)
    for n in (0, 7, 500, 1023):
        np.testing.assert_array_equal(index.hist[n], np.bincount(bins[:, n], minlength=len(HIST_EDGES) + 1))
    # direct logit effect: W_out[n] @ W_U
    effect = gelu.W_out[0, 7].float() @ gelu.W_U.float()
    assert index.logit_top_ids[7].tolist() == effect.topk(10).indices.tolist()


def test_store_round_trip_atomic_and_change_detection(gelu, corpus: Path, tmp_path: Path) -> None:
    docs, skipped = read_documents(corpus, ["a.py", "pkg"])
    arrays = build_index(gelu, docs, BuildOptions(k=4, window=WINDOW))
    out = tmp_path / "idx"
    write_index(arrays, out, model="lenscope-gelu-1l", n_layers=1, tokenizer={"name": "t"}, docs=docs, skipped=skipped, root="r")
    index = open_index(out)
    np.testing.assert_array_equal(index.arrays["top_values"], arrays.top_values)
    assert isinstance(index.arrays["top_context"], np.memmap)  # opened memory-mapped
    assert [f["path"] for f in index.manifest["files"]] == ["a.py", "pkg/c.py"]
    assert changed_files(out, docs) == []
    (corpus / "pkg" / "c.py").write_text("print('changed')\n")
    docs2, _ = read_documents(corpus, ["a.py", "pkg"])
    assert changed_files(out, docs2) == ["pkg/c.py"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_cancelled_build_leaves_no_index(gelu, corpus: Path, tmp_path: Path) -> None:
    docs, _ = read_documents(corpus, ["."])
    calls = []
    with pytest.raises(IndexCancelled):
        build_index(
            gelu, docs, BuildOptions(window=WINDOW, batch_windows=1), progress=calls.append, cancelled=lambda: len(calls) >= 2
        )
    assert calls[-1]["tokens_done"] < calls[-1]["tokens_total"] and calls[-1]["rate"] > 0
    with pytest.raises(IndexNotFound):
        open_index(tmp_path / "never-written")
    half = tmp_path / "half"
    half.mkdir()
    (half / "top_values.npy").write_bytes(b"partial")
    with pytest.raises(IndexNotFound):
        open_index(half)  # arrays without a complete manifest are not an index


def test_neuron_card_and_token_search(gelu, corpus: Path, tmp_path: Path) -> None:
    docs, skipped = read_documents(corpus, ["."])
    arrays = build_index(gelu, docs, BuildOptions(k=6, window=WINDOW))
    out = write_index(arrays, tmp_path / "idx", model="m", n_layers=1, tokenizer={}, docs=docs, skipped=skipped, root="r")
    index = open_index(out)
    card = neuron_card(index, 0, 11)
    assert len(card["examples"]) == 6 and card["layer"] == 0 and card["index"] == 11
    values = [e["value"] for e in card["examples"]]
    assert values == sorted(values, reverse=True)
    by_path = {d.path: d.text for d in docs}
    for e in card["examples"]:
        assert e["activations"][e["max_token"]] == pytest.approx(e["value"], abs=1e-2)
        text = by_path[e["file"]]
        assert "".join(e["tokens"]) == text[e["char_start"] : e["char_end"]]
        assert text[e["max_char_start"] :].startswith(e["tokens"][e["max_token"]])
    assert len(card["logit_boosted"]) == 10 and card["histogram"]["counts"] and json.dumps(card)
    hits = neurons_for_token(index, "return")
    assert hits and all(h["hits"] >= 1 for h in hits)


def test_a_build_reports_its_size_before_its_first_batch(gelu, corpus: Path, tmp_path: Path) -> None:
    """The first progress report comes once the files are tokenized, before any forward pass:
    a panel shows "0 of N tokens" at once, not "starting…" for the whole build."""
    from lenscope.workspace import build_index_over, read_corpus

    reports: list[dict] = []
    c = read_corpus(corpus, ["."])
    result = build_index_over(lambda: gelu, "lenscope-gelu-1l", c, tmp_path / "ix", progress=reports.append, keep_shards=False)
    assert reports[0]["tokens_done"] == 0 < reports[0]["tokens_total"] == result["tokens"]
    assert reports[-1]["tokens_done"] == reports[-1]["tokens_total"] == result["tokens"] and len(reports) >= 2
