"""Two-model comparison and scans against independent computations on the default pair."""

from __future__ import annotations

import numpy as np
import pytest

from lenscope.analysis import analyze
from lenscope.compare import compare, group_rows, scan, to_csv, to_jsonl
from lenscope.errors import InvalidInput
from lenscope.index.corpus import Document
from tests.core.reference import reference

DOCS = [
    Document("a.py", "import os\n\n\ndef main(argv):\n    for arg in argv:\n        print(os.path.basename(arg))\n", "x"),
    Document("b.py", "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n", "y"),
]


def test_comparison_equals_an_independent_computation(gelu, attn_only) -> None:
    clamp = -6.0
    rows = compare(gelu, attn_only, DOCS, ("gelu", "attn"), clamp=clamp)
    expected = []
    for d in DOCS:
        ra, rb = reference(gelu, d.text), reference(attn_only, d.text)
        assert ra.ids == rb.ids
        for i, t in enumerate(ra.ids):
            lp_a, lp_b = float(ra.logprobs[i, t]), float(rb.logprobs[i, t])
            expected.append((d.path, i, lp_a, lp_b, lp_a - max(lp_b, clamp)))
    got = {(r.path, r.token_index): r for r in rows}
    assert len(got) == len(expected)
    for path, i, lp_a, lp_b, diff in expected:
        r = got[(path, i)]
        assert r.lp_a == pytest.approx(lp_a, abs=1e-4) and r.lp_b == pytest.approx(lp_b, abs=1e-4)
        assert r.diff == pytest.approx(diff, abs=1e-4)
    diffs = [r.diff for r in rows]
    assert diffs == sorted(diffs, reverse=True)  # ranked, largest advantage of A first
    assert min(r.lp_b for r in rows) < clamp  # the clamp was exercised...
    assert all(r.diff <= r.lp_a - clamp + 1e-6 for r in rows)  # ...and bounds every diff


def test_scan_log_probs_equal_analyze(gelu) -> None:
    s = scan(gelu, DOCS, "gelu")
    for d, ds in zip(DOCS, s.docs):
        r = analyze(gelu, d.text)
        np.testing.assert_array_equal(ds.logprob, r.predictions.actual_logprob[: len(r.tokens.ids)])
        assert "".join(d.text[a:b] for a, b in zip(ds.token_start.tolist(), ds.token_end.tolist())) == d.text


def test_groups_exports_and_lines(gelu, attn_only) -> None:
    rows = compare(gelu, attn_only, DOCS, ("gelu", "attn"))
    groups = group_rows(rows, "token", min_count=2)
    assert groups and all(g.count >= 2 for g in groups)
    assert [g.mean_diff for g in groups] == sorted((g.mean_diff for g in groups), reverse=True)
    row = next(r for r in rows if r.token.strip() == "print")
    assert row.path == "a.py" and row.line == 6
    assert to_csv(rows).splitlines()[0] == "path,cell,token_index,line,start,end,token,previous,before,after,lp_a,lp_b,diff"
    text = DOCS[0].text
    assert text[row.start - len(row.before) : row.end + len(row.after)] == row.before + row.token + row.after
    assert len(to_jsonl(rows).splitlines()) == len(rows)
    with pytest.raises(InvalidInput, match="group by"):
        group_rows(rows, "nope")


def test_different_tokenizers_are_refused(gelu, tmp_path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from lenscope.models.native import new_native_model, wrap_native

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([d.text for d in DOCS], trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>").save_pretrained(str(tmp_path))
    other_tok = AutoTokenizer.from_pretrained(str(tmp_path))
    config = dict(
        d_model=16,
        n_layers=1,
        n_heads=2,
        d_head=8,
        d_mlp=32,
        n_ctx=32,
        d_vocab=len(other_tok),
        act_fn="gelu_new",
        normalization_type="LN",
        seed=0,
    )
    other = wrap_native(new_native_model(config), config, other_tok, "other")
    with pytest.raises(InvalidInput, match="different tokenizers"):
        compare(gelu, other, DOCS, ("gelu", "other"))


def test_stored_scan_is_reused_only_for_the_same_files(gelu, tmp_path) -> None:
    from lenscope.compare import good_at, load_scan, save_scan

    s = scan(gelu, DOCS, "gelu")
    path = tmp_path / "scans" / "gelu.npz"
    save_scan(s, path, {d.path: d.sha256 for d in DOCS})
    again = load_scan(path, DOCS)
    assert again is not None and again.model == "gelu"
    for x, y in zip(s.docs, again.docs):
        np.testing.assert_array_equal(x.logprob, y.logprob)
        np.testing.assert_array_equal(x.ids, y.ids)
    changed = [DOCS[0], Document(DOCS[1].path, DOCS[1].text + "# more\n", "z")]
    assert load_scan(path, changed) is None  # a file changed: scan again
    groups, confident = good_at(s, min_count=2)
    assert groups and [g.advantage for g in groups] == sorted((g.advantage for g in groups), reverse=True)
    assert confident[0][2] == max(lp for _, _, lp, _ in confident) and confident[0][2] <= 0
