"""Neuron descriptions: chosen on one half of the index's files, scored on the other half."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lenscope.index.build import BuildOptions, build_index
from lenscope.index.card import neuron_card, neurons_for_description
from lenscope.index.corpus import read_documents
from lenscope.index.describe import choose_patterns, describe_stored, score_half, score_patterns
from lenscope.index.descriptions import categories, query_words
from lenscope.index.store import open_index, write_index
from tests.core.reference import random_multi_layer

WINDOW = 24  # the random model's n_ctx: several windows per file

FILES = {
    "a.py": "def add(a, b):\n    return (a + b)\n\n\ndef sub(a, b):\n    return [a - b]\n" * 3,
    "b.py": "items = {'x': [1, 2], 'y': (3, 4)}\nfor k, v in items.items():\n    print(k, v[0])\n" * 3,
    "c.py": "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n" * 3,
    "d.py": "import os\nfor name in sorted(os.listdir('.')):\n    if name.endswith('.py'):\n        print(name)\n" * 2,
    "e.md": "# Notes\n\nThe quick brown fox (a fox) jumps over the [lazy] dog. 1, 2, 3.\n" * 3,
    "f.py": "while True:\n    x = f(g(h(1)))\n    if x > 10:\n        break\n" * 3,
}


@pytest.fixture(scope="module")
def model(gelu) -> Any:
    return random_multi_layer(gelu.tokenizer, gelu.cfg.d_vocab, n_ctx=WINDOW)


def _corpus(root: Path, files: dict[str, str]) -> list[Any]:
    for name, text in files.items():
        (root / name).write_text(text)
    docs, _ = read_documents(root, sorted(files))
    return docs


@pytest.fixture(scope="module")
def built(model, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], Any]:
    docs = _corpus(tmp_path_factory.mktemp("corpus"), FILES)
    # one window per forward: each window's activations do not depend on which others share its batch
    return docs, build_index(model, docs, BuildOptions(k=6, window=WINDOW, batch_windows=1))


def test_split_is_by_file_and_deterministic(built) -> None:
    docs, arrays = built
    d = arrays.descriptions
    score = d.score.astype(bool)
    score_docs, choose_docs = set(arrays.windows[score, 0].tolist()), set(arrays.windows[~score, 0].tolist())
    assert score_docs and choose_docs and not score_docs & choose_docs  # whole files on either side
    assert len(score_docs) == len(docs) // 2
    np.testing.assert_array_equal(score_half(arrays.windows, [x.path for x in docs]), d.score)
    assert d.meta["split"] == "files" and d.meta["score_files"] == sorted(score_docs)
    # one file: split by windows, alternately
    one = score_half(np.array([[0, 0, 5], [0, 5, 5], [0, 10, 3]]), ["only.py"])
    assert one.tolist() == [0, 1, 0]


def test_patterns_come_only_from_the_choose_half(built) -> None:
    """Each pattern is read off choose-half examples: scrambling every score-half token leaves
    all patterns and thresholds as they were; scrambling choose-half tokens does not."""
    _, arrays = built
    d = arrays.descriptions
    rng = np.random.default_rng(0)

    def scrambled(half: int) -> Any:
        tokens = arrays.tokens.copy()
        for w in np.flatnonzero(d.score == half):
            doc, start, n = arrays.windows[w]
            g = arrays.doc_offsets[doc] + start
            tokens[g : g + n] = rng.integers(0, 4000, n)
        return dataclasses.replace(arrays, corpus=arrays.corpus.with_arrays(tokens=tokens))

    same = choose_patterns(scrambled(1), d.score)
    for got, want in zip(same, (d.token, d.prev, d.threshold, d.examples)):
        np.testing.assert_array_equal(got, want)
    changed = choose_patterns(scrambled(0), d.score)
    assert (changed[0] != d.token).any()  # the check above can fail


def test_score_uses_only_the_score_half(built, model) -> None:
    """Counts are computed on score-half text only: any choose-half text gives the same counts,
    while a change to score-half text changes them."""
    _, arrays = built
    d = arrays.descriptions
    hooks = [f"blocks.{layer}.mlp.hook_post" for layer in range(3)]
    for half, expect_same in ((0, True), (1, False)):
        tokens = arrays.tokens.copy()
        for w in np.flatnonzero(d.score == half):
            doc, start, n = arrays.windows[w]
            g = arrays.doc_offsets[doc] + start
            tokens[g : g + n] = np.roll(tokens[g : g + n], 3) if n > 3 else 7
        other = dataclasses.replace(arrays, corpus=arrays.corpus.with_arrays(tokens=tokens))
        counts = score_patterns(model, other, d.score, d.token, d.prev, d.threshold, hooks, batch_windows=1)
        assert np.array_equal(counts, d.counts) == expect_same


def test_editing_a_choose_half_file_leaves_the_held_out_counts(model, tmp_path: Path) -> None:
    """End to end: rebuild after editing a choose-half file (not among the scoring files). Every
    unit whose pattern and threshold stayed the same keeps its held-out counts exactly."""
    (tmp_path / "one").mkdir()
    docs = _corpus(tmp_path / "one", FILES)
    first = build_index(model, docs, BuildOptions(k=6, window=WINDOW, batch_windows=1))
    d1 = first.descriptions
    choose_paths = [docs[i].path for i in range(len(docs)) if i not in d1.meta["score_files"]]
    for target, held_out in ((choose_paths[0], True), (docs[d1.meta["score_files"][0]].path, False)):
        edited = dict(FILES)
        edited[target] = FILES[target].replace("(", "[").replace(")", "]") + "x = (1)\n"
        (tmp_path / target).mkdir(exist_ok=True)
        root = tmp_path / target
        d2 = build_index(model, _corpus(root, edited), BuildOptions(k=6, window=WINDOW, batch_windows=1)).descriptions
        assert d2.meta["score_files"] == d1.meta["score_files"]  # the split depends on paths only
        same = (d2.token == d1.token) & (d2.prev == d1.prev) & (d2.threshold == d1.threshold) & (d1.token >= 0)
        assert same.sum() >= 20
        unchanged = (d2.counts[same] == d1.counts[same]).all()
        assert unchanged == held_out  # and an edit on the score side does change them


def test_stored_precision_and_recall_equal_a_plain_loop(built, model) -> None:
    """Recompute a few units' threshold and counts with run_with_cache, one window at a time,
    tokens from the tokenizer: nothing shared with the vectorized pass but the windows' definition."""
    docs, arrays = built
    d = arrays.descriptions
    tok, bos, body = model.tokenizer, model.tokenizer.bos_token_id, WINDOW - 1
    score_docs = set(d.meta["score_files"])
    rows = [r for r in range(len(d.token)) if d.token[r] >= 0]
    picked = [rows[0], rows[len(rows) // 2], rows[-1], *[r for r in rows if d.prev[r] >= 0][:2]]
    assert {r // 64 for r in picked} >= {0, 2}  # units of the first and the last layer
    choose_max = {r: -np.inf for r in picked}
    counts = {r: [0, 0, 0] for r in picked}
    for doc_i, doc in enumerate(docs):
        ids = tok(doc.text, add_special_tokens=False)["input_ids"]
        for s in range(0, len(ids), body):
            chunk = ids[s : s + body]
            _, cache = model.run_with_cache(torch.tensor([[bos, *chunk]]))
            for r in picked:
                acts = cache[f"blocks.{r // 64}.mlp.hook_post"][0, 1:, r % 64].tolist()
                if doc_i not in score_docs:
                    choose_max[r] = max(choose_max[r], *acts)
                    continue
                for i, a in enumerate(acts):
                    prev = chunk[i - 1] if i > 0 else -1  # the window's first token follows the BOS
                    occurs = ids[s + i] == d.token[r] and (d.prev[r] < 0 or prev == d.prev[r])
                    fires = a > d.threshold[r]
                    counts[r][0] += occurs
                    counts[r][1] += fires
                    counts[r][2] += occurs and fires
    for r in picked:
        assert d.threshold[r] == pytest.approx(choose_max[r] / 2, abs=1e-5)
        assert d.counts[r].tolist() == counts[r], r
    assert sum(counts[r][0] for r in picked) > 0 and sum(counts[r][1] for r in picked) > 0


def test_the_pattern_occurs_at_its_top_examples_and_the_card_shows_it(built, tmp_path: Path) -> None:
    docs, arrays = built
    out = write_index(arrays, tmp_path / "idx", model="random-3l", n_layers=3, tokenizer={}, docs=docs, skipped=[], root="r")
    index = open_index(out)
    score_files = {docs[i].path for i in arrays.descriptions.meta["score_files"]}
    described = 0
    for row in range(index.n_neurons):
        card = neuron_card(index, row // 64, row % 64)
        desc = card["description"]
        if desc is None:
            continue
        described += 1
        threshold = desc["threshold"]
        chosen = [e for e in card["examples"] if e["file"] not in score_files and e["value"] > threshold]
        assert len(chosen) == desc["examples_chosen"]
        width = len(desc["pattern"])
        hits = [e for e in chosen if e["tokens"][e["max_token"] - width + 1 : e["max_token"] + 1] == desc["pattern"]]
        assert len(hits) >= desc["examples_matched"] >= 1
        assert desc["text"].startswith(f'fires on "{desc["pattern"][-1]}"'.replace("\n", "\\n")) or "\\" in desc["text"]
        if desc["too_few_tokens"]:  # a small index: its score half is under MIN_SCORE_TOKENS, and it says so
            assert "too few tokens to score" in desc["text"] and "precision" not in desc["text"]
        elif desc["occurs"] and desc["fires"]:
            assert desc["precision"] == pytest.approx(desc["both"] / desc["occurs"])
            assert desc["recall"] == pytest.approx(desc["both"] / desc["fires"])
            assert f"precision {desc['precision']:.2f}, recall {desc['recall']:.2f}" in desc["text"]
        else:  # nothing to score on: said so, not a made-up number
            assert "held-out" in desc["text"] and "precision" not in desc["text"]
    assert described > index.n_neurons // 2


def test_search_by_description(built, tmp_path: Path) -> None:
    docs, arrays = built
    out = write_index(arrays, tmp_path / "idx", model="random-3l", n_layers=3, tokenizer={}, docs=docs, skipped=[], root="r")
    index = open_index(out)
    cards = [neuron_card(index, r // 64, r % 64)["description"] for r in range(index.n_neurons)]
    brackets = [r for r, c in enumerate(cards) if c and "closing bracket" in c["categories"]]
    assert brackets
    found = neurons_for_description(index, "neurons about closing brackets", limit=1000)
    assert sorted(h["layer"] * 64 + h["index"] for h in found) == sorted(brackets)
    scores = [h["score"] for h in found]
    assert scores == sorted(scores, reverse=True)
    assert all("closing bracket" in h["description"]["categories"] for h in found)
    assert neurons_for_description(index, "neurons about zebras") == []


def test_categories_and_query_words() -> None:
    assert "closing bracket" in categories(")") and "closing bracket" in categories("]):")
    assert categories(" def")[:2] == ["keyword", "keyword def"]
    assert "indentation" in categories("    ") and "newline" in categories("\n    ")
    assert "digit" in categories(" 42") and "string quote" in categories("'") and "operator" in categories(" +=")
    assert query_words("neurons about closing brackets") == ["closing", "bracket"]
    assert query_words("Opening parens") == ["opening", "bracket"]
    assert query_words("neurons for the keyword for") == ["keyword", "for"] and query_words("in") == ["in"]


def test_an_index_without_descriptions_still_opens(built, tmp_path: Path) -> None:
    docs, arrays = built
    out = write_index(
        dataclasses.replace(arrays, descriptions=None), tmp_path / "old", model="m", n_layers=3, tokenizer={}, docs=docs,
        skipped=[], root="r",
    )  # fmt: skip
    index = open_index(out)
    assert "descriptions" not in index.manifest and not list(out.glob("describe_*"))
    assert neuron_card(index, 1, 3)["description"] is None
    assert neurons_for_description(index, "closing bracket") == []


def test_describing_a_stored_index_equals_describing_at_build(built, model, tmp_path: Path) -> None:
    """`lenscope describe` (how the shipped index got its descriptions) adds the same arrays a
    build writes, and only after them the manifest entry that makes them visible."""
    docs, arrays = built
    out = write_index(
        dataclasses.replace(arrays, descriptions=None), tmp_path / "old", model="m", n_layers=3, tokenizer={}, docs=docs,
        skipped=[], root="r",
    )  # fmt: skip
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "manifest.json"}
    got = describe_stored(out, model, hooks=[f"blocks.{layer}.mlp.hook_post" for layer in range(3)], batch_windows=1)
    for name, value in arrays.descriptions.as_arrays().items():
        np.testing.assert_array_equal(got.as_arrays()[name], value)
    index = open_index(out)
    assert index.manifest["descriptions"]["score_files"] == arrays.descriptions.meta["score_files"]
    np.testing.assert_array_equal(index.arrays["describe_counts"], arrays.descriptions.counts)
    assert all((out / name).read_bytes() == data for name, data in before.items())  # nothing else touched
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_cli_card_search_and_export(built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lenscope.cli import main

    docs, arrays = built
    out = write_index(arrays, tmp_path / "idx", model="random-3l", n_layers=3, tokenizer={}, docs=docs, skipped=[], root="r")
    index = open_index(out)
    row = int(np.flatnonzero(arrays.descriptions.token >= 0)[0])
    desc = neuron_card(index, row // 64, row % 64)["description"]
    assert main(["card", f"{row // 64}.{row % 64}", "--index", str(out)]) == 0
    assert desc["text"] in capsys.readouterr().out
    assert main(["card", "--index", str(out), "--search", "closing brackets", "--top", "1000"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in listed] == [
        f"L{h['layer']}.N{h['index']}" for h in neurons_for_description(index, "closing brackets", 1000)
    ]
    assert main(["card", "--index", str(out), "--export", str(tmp_path / "d.tsv")]) == 0
    rows = (tmp_path / "d.tsv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + index.n_neurons and rows[1 + row].split("\t")[:2] == [str(row // 64), str(row % 64)]


def test_counting_units_in_steps_changes_nothing(built, model, monkeypatch: pytest.MonkeyPatch) -> None:
    import lenscope.index.describe as describe

    _, arrays = built
    d = arrays.descriptions
    monkeypatch.setattr(describe, "UNITS_PER_STEP", 50)  # 192 units: steps of 50, 50, 50, 42
    hooks = [f"blocks.{layer}.mlp.hook_post" for layer in range(3)]
    np.testing.assert_array_equal(
        score_patterns(model, arrays, d.score, d.token, d.prev, d.threshold, hooks, batch_windows=3), d.counts
    )


def test_an_sae_feature_index_is_described_from_its_features(gelu, tmp_path: Path) -> None:
    """Units are whatever the build indexes: for an SAE, its features, encoded by the SAE at its
    hook point. Thresholds and held-out counts recomputed with sparsify's own encoder."""
    from lenscope.sae import load_sae
    from tests.core.test_sae import sparsify_folder

    hook = "blocks.0.mlp.hook_post"
    coder = sparsify_folder(tmp_path, 1024, 128, 8, hook)
    sae = load_sae(tmp_path / hook, name="rand")
    (tmp_path / "corpus").mkdir()
    docs = _corpus(tmp_path / "corpus", FILES)
    d = build_index(gelu, docs, BuildOptions(k=5, window=32), sae=sae).descriptions
    assert d is not None and d.token.shape == (128,) and (d.token >= 0).sum() > 64
    picked = np.flatnonzero((d.token >= 0) & (d.counts[:, 1] > 0))[:4]
    score_docs = set(d.meta["score_files"])
    choose_max = np.full(len(picked), -np.inf)
    counts = np.zeros((len(picked), 3), dtype=np.int64)
    for i, doc in enumerate(docs):
        ids = gelu.tokenizer(doc.text, add_special_tokens=False)["input_ids"]
        for s in range(0, len(ids), 31):
            chunk = ids[s : s + 31]
            _, cache = gelu.run_with_cache(torch.tensor([[gelu.tokenizer.bos_token_id, *chunk]]), names_filter=[hook])
            out = coder.encode(cache[hook][0, 1:].float())
            acts = torch.zeros(len(chunk), 128).scatter_(-1, out.top_indices, out.top_acts).detach().numpy()[:, picked]
            if i not in score_docs:
                choose_max = np.maximum(choose_max, acts.max(axis=0))
                continue
            prev = np.array([-1, *chunk[:-1]])
            occurs = (np.array(chunk)[:, None] == d.token[picked]) & ((d.prev[picked] < 0) | (prev[:, None] == d.prev[picked]))
            fires = acts > d.threshold[picked]
            counts += np.stack([occurs.sum(0), fires.sum(0), (occurs & fires).sum(0)], axis=1)
    np.testing.assert_allclose(d.threshold[picked], choose_max / 2, atol=1e-4)
    np.testing.assert_array_equal(d.counts[picked], counts)


def test_one_file_is_split_by_windows(model, tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    docs = _corpus(tmp_path / "one", {"only.py": FILES["a.py"] + FILES["f.py"]})
    arrays = build_index(model, docs, BuildOptions(k=6, window=WINDOW))
    d = arrays.descriptions
    assert d.meta["split"] == "windows" and d.score.tolist() == [i % 2 for i in range(len(arrays.windows))]
    assert d.meta["score_tokens"] == int(arrays.windows[1::2, 2].sum()) > 0
    # every pattern is read off an example in an even (choose) window
    for r in np.flatnonzero(d.token >= 0):
        w = arrays.top_windows[r]
        chosen = (w >= 0) & (w % 2 == 0) & (arrays.top_values[r] > d.threshold[r])
        assert chosen.sum() == d.examples[r, 1] >= d.examples[r, 0] >= 1
