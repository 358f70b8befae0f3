"""Unit descriptions: chosen on one half of the index's files, scored on the other half; the pattern
kinds found on constructed corpora; the samples (quantile and random examples) recorded with them."""

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
from lenscope.index.describe import describe_stored, score_half
from lenscope.index.descriptions import CLASSES, OLD_ARRAYS, categories, pattern_of, query_words
from lenscope.index.patterns import Chooser, positions
from lenscope.index.samples import INTERVALS, PER_INTERVAL, RANDOM, priority
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


def occurs_at(d: Any, r: int, chunk: list[int], i: int, strings: dict[int, str]) -> bool:
    """Whether unit ``r``'s pattern occurs at token ``i`` of a window ``chunk``: a plain loop."""
    kind, toks, cls, context, within = d.kind[r], d.tokens[r], d.cls[r], d.context[r], d.within[r]
    if kind == 0:
        return False
    in_class = abs(kind) == 2 and bool(CLASSES[cls][1](strings.get(chunk[i], "")))
    base = in_class or (abs(kind) == 1 and chunk[i] in [int(t) for t in toks if t >= 0])
    return base and (context < 0 or context in chunk[max(0, i - within) : i])


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


def test_editing_one_half_leaves_what_the_other_half_decides(model, tmp_path: Path) -> None:
    """End to end: rebuild after editing a score-half file: every pattern and threshold stays
    (they are chosen on the choose half only). After editing a choose-half file, every unit whose
    pattern and threshold stayed keeps its held-out counts exactly (they are counted on the score
    half only)."""
    (tmp_path / "one").mkdir()
    docs = _corpus(tmp_path / "one", FILES)
    first = build_index(model, docs, BuildOptions(k=6, window=WINDOW, batch_windows=1))
    d1 = first.descriptions
    choose_paths = [docs[i].path for i in range(len(docs)) if i not in d1.meta["score_files"]]
    keys = ("kind", "tokens", "cls", "context", "within", "threshold")
    for target, held_out in ((choose_paths[0], True), (docs[d1.meta["score_files"][0]].path, False)):
        edited = dict(FILES)
        edited[target] = FILES[target].replace("(", "[").replace(")", "]") + "x = (1)\n"
        root = tmp_path / target
        root.mkdir(exist_ok=True)
        d2 = build_index(model, _corpus(root, edited), BuildOptions(k=6, window=WINDOW, batch_windows=1)).descriptions
        assert d2.meta["score_files"] == d1.meta["score_files"]  # the split depends on paths only
        same = np.ones(len(d1.kind), dtype=bool)
        for key in keys:
            a, b = getattr(d1, key), getattr(d2, key)
            same &= (a == b).reshape(len(a), -1).all(axis=1)
        if held_out:  # a choose-half edit: patterns move, the counts of those that stayed do not
            assert (same & (d1.kind != 0)).sum() >= 10 and not same.all()
            np.testing.assert_array_equal(d2.counts[same], d1.counts[same])
        else:  # a score-half edit: the patterns stay, and the counts move
            # (all but a unit or two: a different build's forwards may differ in the last bits,
            # and a unit with an activation at its threshold then fires on one token more or less)
            assert same.mean() >= 0.97, np.flatnonzero(~same)
            assert (d2.counts != d1.counts).any()


def test_stored_precision_and_recall_equal_a_plain_loop(built, model) -> None:
    """Recompute a few units' threshold and counts with run_with_cache, one window at a time,
    tokens from the tokenizer: nothing shared with the vectorized pass but the windows' definition."""
    docs, arrays = built
    d = arrays.descriptions
    tok, bos, body = model.tokenizer, model.tokenizer.bos_token_id, WINDOW - 1
    score_docs = set(d.meta["score_files"])
    rows = [r for r in range(len(d.kind)) if d.kind[r] != 0]
    picked = [rows[0], rows[len(rows) // 2], rows[-1], *[r for r in rows if d.context[r] >= 0][:2]]
    picked += [r for r in rows if abs(d.kind[r]) == 2][:2] + [r for r in rows if (d.tokens[r] >= 0).sum() > 1][:2]
    picked = sorted(set(picked))
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
                    occurs = occurs_at(d, r, chunk, i, arrays.strings)
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
        assert desc["examples_matched"] <= len(chosen)
        assert desc["text"].startswith("fires on" if desc["kind"] != "none" else "no simple pattern")
        assert desc["metrics"] == "precision = P(pattern | fires), recall = P(fires | pattern), on held-out text"
        if desc["too_few_tokens"]:  # a small index: its score half is under MIN_SCORE_TOKENS, and it says so
            assert "too few tokens to score" in desc["text"] and "precision" not in desc["text"]
        elif desc["occurs"] and desc["fires"]:
            assert desc["precision"] == pytest.approx(desc["both"] / desc["fires"])  # P(pattern | fires)
            assert desc["recall"] == pytest.approx(desc["both"] / desc["occurs"])  # P(fires | pattern)
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
    assert [h["score"] for h in neurons_for_description(index, '"closing bracket"')] == scores[:20]  # typed with quotes
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
        dataclasses.replace(arrays, descriptions=None, samples=None), tmp_path / "old", model="m", n_layers=3,
        tokenizer={}, docs=docs, skipped=[], root="r",
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
        dataclasses.replace(arrays, descriptions=None, samples=None), tmp_path / "old", model="m", n_layers=3,
        tokenizer={}, docs=docs, skipped=[], root="r",
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
    row = int(np.flatnonzero(arrays.descriptions.kind != 0)[0])
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
    assert d is not None and d.kind.shape == (128,) and (d.kind != 0).sum() > 64
    picked = np.flatnonzero((d.kind != 0) & (d.counts[:, 1] > 0))[:4]
    strings = {i: gelu.tokenizer.decode([i]) for i in range(len(gelu.tokenizer))}
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
            occurs = np.array([[occurs_at(d, r, chunk, j, strings) for r in picked] for j in range(len(chunk))])
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
    for r in np.flatnonzero(d.kind != 0):
        w = arrays.top_windows[r]
        chosen = (w >= 0) & (w % 2 == 0) & (arrays.top_values[r] > d.threshold[r])
        assert chosen.sum() == d.examples[r, 1] >= d.examples[r, 0] >= 0


SYN_STRINGS = {i: (str(i) if i < 10 else f" w{i}") for i in range(50)}


def _synthetic() -> tuple[Any, dict[str, np.ndarray]]:
    """A corpus of random tokens (0-9 are digits, the rest words) in windows of 100, and units
    whose firing is defined here: the answer each pattern kind must find."""
    rng = np.random.default_rng(1)
    n_windows, body = 200, 100
    tokens = rng.integers(0, 50, n_windows * body)
    windows = np.array([[0, w * body, body] for w in range(n_windows)])
    at = positions(windows, np.array([0, len(tokens)]), tokens, np.arange(n_windows) % 2)
    t = np.tile(np.arange(body), n_windows)
    recent = np.zeros(len(tokens), dtype=bool)  # token 30 among the last 5 of the same window
    for j in range(1, 6):
        recent[j:] |= (tokens[:-j] == 30) & (t[j:] >= j)
    fires = {
        "context": (tokens == 20) & recent,
        "class": tokens < 10,
        "set": np.isin(tokens, [21, 22, 23]),
        "pair": (tokens == 24) & (at.prev[:, 0] == 25),
        "noise": rng.random(len(tokens)) < 0.02,
    }
    return at, fires


def test_pattern_kinds_are_found_where_the_answer_is_known() -> None:
    """Units whose activation is defined on a constructed corpus: the chosen pattern is the one
    they were built from, and it scores well on the half it was not chosen on."""
    from lenscope.index.patterns import mask

    at, fires = _synthetic()
    chooser = Chooser(at, SYN_STRINGS)
    score = at.half == 1
    got = {}
    for name, f in fires.items():
        p = chooser.choose(np.flatnonzero(f[~score]))
        occurs = mask(p, at.tok[score], at.prev[score], chooser.members)
        both = (occurs & f[score]).sum()
        got[name] = (p, 2 * both / (occurs.sum() + f[score].sum()))
    p, f1 = got["context"]
    assert (p.kind, p.tokens, p.context, p.within) == (1, (20,), 30, 8) and f1 > 0.8
    p, f1 = got["class"]
    assert p.kind == 2 and CLASSES[p.cls][0] == "digit" and p.context < 0 and f1 == 1.0
    p, f1 = got["set"]
    assert (p.kind, p.tokens, p.context) == (1, (21, 22, 23), -1) and f1 == 1.0
    p, f1 = got["pair"]
    assert (p.kind, p.tokens, p.context, p.within) == (1, (24,), 25, 1) and f1 == 1.0
    p, f1 = got["noise"]
    assert p.kind < 0 and f1 < 0.1  # no simple pattern: said so


def test_quantile_and_random_examples_equal_a_plain_computation(built, model) -> None:
    """Every token's activation from run_with_cache, window by window; in each interval of
    (0, max] the 5 tokens first in the seeded order, and 5 of those above the threshold."""
    docs, arrays = built
    s, d = arrays.samples, arrays.descriptions
    tok, bos, body = model.tokenizer, model.tokenizer.bos_token_id, WINDOW - 1
    picked = [0, 70, 191]
    acts: dict[int, list[tuple[int, float]]] = {r: [] for r in picked}
    for doc_i, doc in enumerate(docs):
        ids = tok(doc.text, add_special_tokens=False)["input_ids"]
        for start in range(0, len(ids), body):
            chunk = ids[start : start + body]
            _, cache = model.run_with_cache(torch.tensor([[bos, *chunk]]))
            for r in picked:
                a = cache[f"blocks.{r // 64}.mlp.hook_post"][0, 1:, r % 64].float()
                g0 = int(arrays.doc_offsets[doc_i]) + start
                acts[r] += [(g0 + i, float(v)) for i, v in enumerate(a.tolist())]
    prio = priority(len(arrays.tokens))
    for r in picked:
        g = np.array([x for x, _ in acts[r]])
        a = torch.tensor([v for _, v in acts[r]], dtype=torch.float32)
        top = torch.tensor(float(arrays.max[r]))
        assert float(a.max()) == pytest.approx(float(top), abs=1e-5)
        bins = (torch.ceil(a / top * INTERVALS) - 1).clamp(max=INTERVALS - 1).numpy()
        for i in range(INTERVALS):
            inside = g[(a.numpy() > 0) & (bins == i)]
            want = inside[np.argsort(prio[inside])][:PER_INTERVAL].tolist()
            got = [int(x) for x in s.quantile_positions[r, i] if x >= 0]
            assert got == want, (r, i)
        above = g[a.numpy() > d.threshold[r]]
        assert [int(x) for x in s.random_positions[r] if x >= 0] == above[np.argsort(prio[above])][:RANDOM].tolist()
        assert s.fire_counts[r].tolist() == [int((a > 0).sum()), len(above)]
        values = dict(acts[r])
        for x, v in zip(s.quantile_positions[r].reshape(-1), s.quantile_values[r].reshape(-1)):
            if x >= 0:
                assert v == pytest.approx(values[int(x)], abs=1e-4)


def test_cli_card_shows_logit_effects_and_quantiles(built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lenscope.cli import main

    docs, arrays = built
    out = write_index(arrays, tmp_path / "idx", model="random-3l", n_layers=3, tokenizer={}, docs=docs, skipped=[], root="r")
    index = open_index(out)
    row = 70
    card = neuron_card(index, row // 64, row % 64)
    assert main(["card", f"L{row // 64}.N{row % 64}", "--index", str(out), "--top", "3"]) == 0
    text = capsys.readouterr().out
    boosted = card["logit_boosted"][0]
    assert "boosts:" in text and f"{boosted['value']:+.2f}" in text and "suppresses:" in text
    assert "precision = P(pattern | fires), recall = P(fires | pattern)" in text
    q = card["quantiles"]
    assert len(q) == INTERVALS and q[0]["high"] == pytest.approx(float(arrays.max[row]))
    for interval in q:
        assert f"interval {interval['low']:.3f} .. {interval['high']:.3f}" in text
        for e in interval["examples"]:
            assert interval["low"] < e["value"] <= interval["high"] + 1e-6
            assert f"{e['value']:7.3f}" in text
    assert "random firing examples:" in text
    share = arrays.samples.fire_counts[row, 1] / arrays.count
    assert f"on {100 * share:.2f}% of {arrays.count:,} tokens" in text


def test_an_index_of_the_old_descriptions_still_reads(built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An index written before pattern kinds and samples (format 2: a token and the one before it,
    no quantiles) opens; its cards say they have no quantiles; its metrics follow the detector
    convention from the same counts."""
    import json

    from lenscope.cli import main

    docs, arrays = built
    d = arrays.descriptions
    out = write_index(dataclasses.replace(arrays, samples=None), tmp_path / "old", model="random-3l", n_layers=3,
                      tokenizer={}, docs=docs, skipped=[], root="r")  # fmt: skip
    token = np.where(d.kind == 1, d.tokens[:, 0], -1).astype(np.int32)
    prev = np.where((d.kind == 1) & (d.within == 1), d.context, -1).astype(np.int32)
    np.save(out / "describe_token.npy", token)
    np.save(out / "describe_prev.npy", prev)
    for name in ("describe_kind", "describe_tokens", "describe_class", "describe_context", "describe_within"):
        (out / f"{name}.npy").unlink()
    m = json.loads((out / "manifest.json").read_text())
    m["format"] = 2
    m["descriptions"].pop("arrays")
    (out / "manifest.json").write_text(json.dumps(m))
    index = open_index(out)
    assert set(OLD_ARRAYS) <= set(index.arrays)
    row = int(np.flatnonzero(token >= 0)[0])
    assert pattern_of(row, index.arrays)[:2] == (1, [int(token[row])])
    card = neuron_card(index, row // 64, row % 64)
    assert card["quantiles"] is None and card["description"]["precision"] == pytest.approx(d.counts[row, 2] / d.counts[row, 1])
    assert main(["card", f"L{row // 64}.N{row % 64}", "--index", str(out)]) == 0
    assert "quantile examples: none (the index was built before them" in capsys.readouterr().out


def test_cli_card_inputs_are_the_weights_input_side(gelu, capsys: pytest.CaptureFixture[str]) -> None:
    """`lenscope card L0.N224 --inputs`: the shipped index's neuron with the tokens that raise it
    most on their own, as lenscope.circuits reads them off the weights."""
    from lenscope.circuits import neuron_inputs, vocab_pool
    from lenscope.cli import main, visible
    from lenscope.tokens import token_strings

    assert main(["card", "L0.N224", "--inputs", "--top", "1"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("raised by:"))
    rows = neuron_inputs(gelu, 0, 224, 8, vocab_pool(gelu, "lenscope-gelu-1l"))
    texts = token_strings(gelu.tokenizer, [i for i, _ in rows])
    assert line.split("  (")[0].removeprefix("raised by:  ") == "  ".join(
        f"{visible(t)} {v:.2f}" for t, (_, v) in zip(texts, rows)
    )
