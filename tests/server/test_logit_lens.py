"""POST logit_lens over HTTP equals the core's lens, in both encodings, and its last row equals POST
analyze's predictions; bad input is a 400 naming the field."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from lenscope.logitlens import logit_lens, logit_lens_to_wire
from lenscope.wire import LogitLensResponse
from lenscope.wire_codec import decode_json, decode_msgpack, encode_msgpack, wire_equal
from tests.server.helpers import MSGPACK, body_of, decoded, error_of, post_analyze

TEXT = "def add(a, b):\n    return a + b\n"


async def post_lens(jp_fetch: Any, body: dict[str, Any], accept: str = "application/json") -> Any:
    return await jp_fetch(
        "lenscope", "api", "logit_lens", method="POST", body=json.dumps(body),
        headers={"Content-Type": "application/json", "Accept": accept},
    )  # fmt: skip


@pytest.mark.parametrize("accept", ["application/json", MSGPACK])
async def test_logit_lens_equals_the_core(jp_fetch, gelu, accept: str) -> None:
    response = await post_lens(jp_fetch, {"text": TEXT, "context": "import os\n", "positions": [4, 1]}, accept)
    LogitLensResponse.model_validate(body_of(response))
    got = decode_msgpack(response.body) if accept == MSGPACK else decode_json(response.body)
    expected = logit_lens_to_wire(logit_lens(gelu, TEXT, context="import os\n", positions=[4, 1], model_name="lenscope-gelu-1l"))
    expected = decode_msgpack(encode_msgpack(expected))  # what the wire makes of it (dtypes, lists)
    skip = {"timings_ms"}
    assert wire_equal({k: v for k, v in got.items() if k not in skip}, {k: v for k, v in expected.items() if k not in skip})
    assert got["positions"] == [1, 4] and got["rows"] == ["embed", "L0"]
    assert got["top_ids"].shape == (2, 2, 5) and got["actual_rank"].dtype == np.int32


async def test_the_last_row_is_post_analyze(jp_fetch) -> None:
    """Every token of an attention-only model: the lens's output row is analyze's prediction row i + 1."""
    model = "lenscope-attn-only-1l"
    lens = decode_json((await post_lens(jp_fetch, {"text": TEXT, "model": model})).body)
    pred = decoded(await post_analyze(jp_fetch, {"text": TEXT, "model": model, "top_k": 5}))["predictions"]
    n = len(lens["tokens"]["ids"])
    assert lens["positions"] == list(range(n))
    np.testing.assert_array_equal(lens["top_ids"][-1], pred["top_ids"][1:])
    np.testing.assert_array_equal(lens["actual_rank"][-1], pred["actual_rank"][1:])
    np.testing.assert_allclose(lens["actual_logprob"][-1, :-1], pred["actual_logprob"][1:-1], atol=1e-4)
    assert lens["actual_ids"][-1] == -1 and lens["actual_ids"][0] == lens["tokens"]["ids"][1]


@pytest.mark.parametrize(
    "body,status,words",
    [
        ({"text": TEXT, "positions": [999]}, 400, "position must be between 0 and"),
        ({"text": TEXT, "positions": []}, 400, "positions: List should have at least 1 item"),
        ({"text": TEXT, "top_k": 0}, 400, "top_k: Input should be greater than or equal to 1"),
        ({"text": "   "}, 400, "text is only whitespace"),
        ({"text": TEXT, "model": "no-such-model"}, 404, "no-such-model"),
    ],
)
async def test_bad_logit_lens_requests(jp_fetch, body: dict[str, Any], status: int, words: str) -> None:
    got_status, error, _ = await error_of(post_lens(jp_fetch, body))
    assert got_status == status and words in error["error"]["message"], error
