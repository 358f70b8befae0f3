"""POST analyze / attention on token ids (the induction probe's sequence, as the panel sends it),
POST head_scores on a text, and their bad input: named 400s (issue #25 items 2, 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lenscope.analysis import analyze
from lenscope.headscores import text_scores
from tests.server.helpers import body_of, decoded, error_of, post_analyze

IDS = [262, 290, 1000, 262, 290, 1000]


async def post(jp_fetch, route: str, body: dict):
    return await jp_fetch("lenscope", "api", route, method="POST", body=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json", "Accept": "application/json"})  # fmt: skip


async def test_analyze_attention_and_head_scores_over_http(jp_fetch, gelu) -> None:
    got = decoded(await post_analyze(jp_fetch, {"model": "lenscope-gelu-1l", "text": "", "token_ids": IDS}))
    want = analyze(gelu, "", token_ids=IDS)
    assert got["tokens"]["ids"].tolist() == IDS
    np.testing.assert_allclose(got["predictions"]["actual_logprob"][1:-1], want.predictions.actual_logprob[1:-1], atol=1e-4)
    att = body_of(await post(jp_fetch, "attention", {"model": "lenscope-gelu-1l", "text": "", "token_ids": IDS, "k": 4}))
    assert att["n_heads"] > 0
    text = "for x in xs:\n    print(x)\nfor x in xs:\n    print(x)\n"
    scores = body_of(await post(jp_fetch, "head_scores_text", {"model": "lenscope-gelu-1l", "text": text}))
    want_scores = text_scores(gelu, text)
    assert scores["on"] == "text"
    # no repeats: no induction targets
    plain = body_of(await post(jp_fetch, "head_scores_text", {"model": "lenscope-gelu-1l", "text": "abc"}))
    assert plain["scores"]["induction"][0][0] is None and plain["top"]["induction"] == []
    for role in scores["roles"]:
        np.testing.assert_allclose(np.array(scores["scores"][role], dtype=float), want_scores.scores[role], atol=1e-4)


@pytest.mark.parametrize(
    "route,body,needle",
    [
        ("analyze", {"text": "", "token_ids": [10**7]}, "token ids[0]"),
        ("analyze", {"text": "", "token_ids": []}, "token ids are empty"),
        ("analyze", {"text": "x", "token_ids": [5]}, "not both"),
        ("analyze", {"text": ""}, "text is empty"),
        ("attention", {"text": "", "token_ids": [1, 2, 10**7]}, "token ids[2]"),
        ("attention", {"text": "", "token_ids": []}, "token ids are empty"),
        ("analyze", {"text": "", "token_ids": [-1]}, "token_ids"),
        ("head_scores_text", {"text": ""}, "text"),
    ],
)
async def test_token_ids_bad_input(jp_fetch, route: str, body: dict, needle: str) -> None:
    status, error, _ = await error_of(post(jp_fetch, route, {"model": "lenscope-gelu-1l", **body}))
    assert status == 400 and needle in error["error"]["message"], error
