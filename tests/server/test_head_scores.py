"""GET heads/{model}/scores over HTTP equals the core's probe; bad input is a named 400/404."""

from __future__ import annotations

import numpy as np
import pytest

from lenscope.headscores import frequent_tokens, induction_probe, shipped_token_counts
from lenscope.wire import HeadScoresResponse
from tests.server.helpers import MSGPACK, body_of, error_of


@pytest.mark.parametrize("accept", ["application/json", MSGPACK])
async def test_head_scores_equal_the_core_probe(jp_fetch, gelu, accept: str) -> None:
    got = body_of(await jp_fetch("lenscope", "api", "heads", "lenscope-gelu-1l", "scores", params={"length": 30, "seed": 4},
                                 headers={"Accept": accept}))  # fmt: skip
    HeadScoresResponse.model_validate(got)
    pool = frequent_tokens(gelu, counts=shipped_token_counts("lenscope-gelu-1l", gelu.cfg.d_vocab))
    want = induction_probe(gelu, length=30, seed=4, pool=pool)
    assert got["length"] == 30 and got["seed"] == 4 and got["tokens"] == 61
    assert got["in_context_gain"] == pytest.approx(want.in_context_gain, abs=1e-4)
    for role in got["roles"]:
        np.testing.assert_allclose(np.array(got["scores"][role], dtype=float), want.scores[role], atol=1e-4)
        assert [(t["layer"], t["head"]) for t in got["top"][role]] == [(la, h) for la, h, _ in want.top(role)]


@pytest.mark.parametrize(
    "model,params,status,needle",
    [
        ("lenscope-gelu-1l", {"length": 500}, 400, "length"),
        ("lenscope-gelu-1l", {"seed": "x"}, 400, "seed"),
        ("nope", {}, 404, "nope"),
    ],
)
async def test_head_scores_bad_input(jp_fetch, model: str, params: dict, status: int, needle: str) -> None:
    got, error, _ = await error_of(jp_fetch("lenscope", "api", "heads", model, "scores", params=params))
    assert got == status and needle in error["error"]["message"], error
