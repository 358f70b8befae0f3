"""analyze and attend on token ids as given (a probe of random tokens, no re-tokenization) equal
a direct forward of BOS + those ids; bad ids are named."""

from __future__ import annotations

import pytest
import torch

from lenscope.analysis import analyze
from lenscope.attention import attend
from lenscope.errors import InputTooLarge, InvalidInput
from lenscope.headscores import probe_sequences


@pytest.mark.parametrize("which", ["gelu", "gelu2"])
def test_analyze_on_ids_equals_a_direct_forward(which: str, request) -> None:
    model = request.getfixturevalue(which)
    ids = probe_sequences(model, length=30, batch=1, seed=7)[0, 1:].tolist()
    result = analyze(model, "", token_ids=ids)
    assert result.tokens.ids.tolist() == ids and result.context_tokens == 0
    assert "".join(result.token_texts) == "".join(model.tokenizer.batch_decode([[i] for i in ids]))
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([[model.tokenizer.bos_token_id, *ids]]))[0].float(), -1)
    actual = lp[torch.arange(len(ids)), torch.tensor(ids)]
    torch.testing.assert_close(torch.from_numpy(result.predictions.actual_logprob[:-1]), actual, atol=1e-4, rtol=0)
    rank = (lp[torch.arange(len(ids))] > actual[:, None]).sum(-1) + 1
    assert result.predictions.actual_rank[:-1].tolist() == rank.tolist()
    heads = attend(model, "", token_ids=ids, k=2)
    assert heads.token_texts == result.token_texts


def test_bad_ids_are_named(gelu) -> None:
    with pytest.raises(InvalidInput, match=r"ids\[1\] is 4096"):
        analyze(gelu, "", token_ids=[5, 4096])
    with pytest.raises(InvalidInput, match="empty"):
        analyze(gelu, "", token_ids=[])
    with pytest.raises(InvalidInput, match="not both"):
        analyze(gelu, "x", token_ids=[5])
    with pytest.raises(InvalidInput, match="integers"):
        attend(gelu, "", token_ids=[5, "6"])  # type: ignore[list-item]
    with pytest.raises(InputTooLarge):
        analyze(gelu, "", token_ids=[5] * 70_000)
