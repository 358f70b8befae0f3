"""The comparison explained, against attribution position by position and plain TransformerLens hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lenscope.attribution import attribute
from lenscope.compare import compare
from lenscope.errors import InvalidInput
from lenscope.explain import ablated_logprob, advantage_lost, explain
from lenscope.index.corpus import Document

CODE = "import os\n\ndef handler(path):\n    return os.path.join(path, 'x')\n" * 8  # several windows


@pytest.fixture(scope="module")
def rows(gelu, attn_only):
    return compare(gelu, attn_only, [Document("a.py", CODE, "h"), Document("b.py", CODE[:120], "h2")], ("a", "b"))


def test_each_rows_mlp_part_and_neurons_equal_attribution_at_its_position(gelu, rows) -> None:
    texts = {"a.py": CODE, "b.py": CODE[:120]}
    chosen = [r for r in rows if r.token_index >= 1][:12]
    got = explain(gelu, texts, chosen, carrier_rows=chosen[:6], top=3)
    sums = np.zeros((1, gelu.cfg.d_mlp))
    for r in chosen:
        ref = attribute(gelu, texts[r.path], r.token_index - 1)
        assert ref.target == gelu.tokenizer(texts[r.path], add_special_tokens=False)["input_ids"][r.token_index]
        e = got.rows[(r.path, r.token_index)]
        assert e.mlp == pytest.approx(float(ref.neurons.sum()), abs=1e-4)
        order = np.argsort(-np.abs(ref.neurons[0]))[:3]
        assert [ix for _, ix, _ in e.neurons] == order.tolist()
        assert [v for _, _, v in e.neurons] == pytest.approx(ref.neurons[0][order].tolist(), abs=1e-4)
        if r in chosen[:6]:
            sums += ref.neurons
    best = np.argsort(-sums[0])[:20]
    assert [c.index for c in got.carriers] == best.tolist()
    assert [c.total for c in got.carriers] == pytest.approx(sums[0][best].tolist(), abs=1e-3)


def test_ablation_equals_a_plain_hook_and_nothing_ablated_is_the_scan(gelu, rows) -> None:
    r = next(r for r in rows if r.path == "b.py" and r.token_index > 5)
    assert ablated_logprob(gelu, CODE[:120], r.token_index, []) == pytest.approx(r.lp_a, abs=1e-4)
    ids = gelu.tokenizer(CODE[:120], add_special_tokens=False)["input_ids"]
    neurons = [(0, 5), (0, 77), (0, 1000)]

    def hook(act, hook):
        act[0, r.token_index, [5, 77, 1000]] = 0.0  # BOS first: the position predicting token t is t
        return act

    with torch.no_grad():
        logits = gelu.run_with_hooks(
            torch.tensor([[gelu.tokenizer.bos_token_id, *ids]]), fwd_hooks=[("blocks.0.mlp.hook_post", hook)]
        )
    want = torch.log_softmax(logits[0, r.token_index].float(), -1)[ids[r.token_index]]
    assert ablated_logprob(gelu, CODE[:120], r.token_index, neurons) == pytest.approx(float(want), abs=1e-4)


def test_advantage_lost_is_the_share_of_diff_removed(gelu, rows) -> None:
    texts = {"a.py": CODE, "b.py": CODE[:120]}
    top = [r for r in rows if r.diff > 0 and r.token_index >= 1][:5]
    carriers = explain(gelu, texts, [], carrier_rows=top).carriers[:5]
    got = advantage_lost(gelu, texts, top, [(c.layer, c.index) for c in carriers])
    r = top[0]
    lp = ablated_logprob(gelu, texts[r.path], r.token_index, [(c.layer, c.index) for c in carriers])
    assert got.lost[0] == pytest.approx((r.diff - (lp - max(r.lp_b, -6.0))) / r.diff)
    assert got.quartiles[0] <= got.median <= got.quartiles[1]
    assert advantage_lost(gelu, texts, top, []).lost == pytest.approx(np.zeros(5), abs=1e-3)


def test_bad_input(gelu, attn_only, rows) -> None:
    with pytest.raises(InvalidInput, match="no MLP"):
        explain(attn_only, {"a.py": CODE}, rows[:2])
    with pytest.raises(InvalidInput, match="not a neuron"):
        ablated_logprob(gelu, CODE, 3, [(0, 4096)])
    with pytest.raises(InvalidInput, match="token_index must be between 1"):
        ablated_logprob(gelu, CODE, 0, [])
