"""Text longer than the model's context: overlapping windows, every token exactly once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lenscope.analysis import analyze
from lenscope.engine.windows import plan_windows

LONG_TEXT = (Path(__file__).parent / "reference.py").read_text(encoding="utf-8") * 2


@pytest.mark.parametrize("total,body", [(1, 10), (10, 10), (11, 10), (600, 255), (1000, 7), (513, 64)])
def test_plan_covers_each_position_once_with_half_a_window_of_context(total: int, body: int) -> None:
    windows = plan_windows(total, body)
    reported = [p for w in windows for p in range(w.report_from, w.report_to)]
    assert reported == list(range(-1, total))
    for w in windows:
        assert w.stop - w.start <= body and 0 <= w.start < w.stop <= total
        if w.start > 0:
            assert w.report_from - w.start >= body // 2


def test_plan_skips_windows_before_what_is_needed() -> None:
    windows = plan_windows(1000, 100, first_needed=700)
    assert windows[0].report_to > 700
    assert [p for w in windows for p in range(w.report_from, w.report_to) if p >= 700] == list(range(700, 1000))


def test_long_text_is_windowed_and_each_window_matches_a_direct_forward(gelu) -> None:
    n_ctx = gelu.cfg.n_ctx
    got = analyze(gelu, LONG_TEXT, top_neurons=5)
    ids = got.tokens.ids.tolist()
    assert len(ids) > 2 * n_ctx, "the test text must be longer than the context"
    assert got.windowed and got.windows >= 3
    assert "".join(got.token_texts) == LONG_TEXT  # every token exactly once, in order
    assert got.predictions.top_ids.shape[0] == len(ids) + 1
    bos = gelu.tokenizer.bos_token_id
    for w in plan_windows(len(ids), n_ctx - 1):
        x = torch.tensor([[bos, *ids[w.start : w.stop]]])
        with torch.no_grad():
            lp = torch.log_softmax(gelu(x)[0].float(), dim=-1)
        for pos in range(w.report_from, w.report_to):
            row = pos + 1  # prediction row j = output at S position j - 1
            local = pos - w.start + 1
            assert got.predictions.top_ids[row].tolist() == lp[local].topk(10).indices.tolist()
            if pos + 1 < len(ids):
                np.testing.assert_allclose(got.predictions.actual_logprob[row], float(lp[local, ids[pos + 1]]), atol=1e-4)


def test_windowed_equals_single_pass_where_a_single_pass_fits(gelu) -> None:
    text = LONG_TEXT[:450]
    single = analyze(gelu, text)
    assert not single.windowed
    small = analyze(gelu, text, window=64)
    assert small.windowed and small.windows > 2
    assert small.tokens.ids.tolist() == single.tokens.ids.tolist()
    first = 64  # window 0 reports the BOS and 62 tokens: prediction rows 0 .. 63
    np.testing.assert_array_equal(small.predictions.top_ids[:first], single.predictions.top_ids[:first])
    np.testing.assert_allclose(small.predictions.actual_logprob[:first], single.predictions.actual_logprob[:first], atol=1e-5)
    np.testing.assert_array_equal(small.predictions.neuron_index[: first - 1], single.predictions.neuron_index[: first - 1])
    # later rows saw less context, so they may differ; shapes and coverage still match
    assert small.predictions.top_ids.shape == single.predictions.top_ids.shape
