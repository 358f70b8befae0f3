"""GET heads/{model}/{layer}/{head} with its questions (vocab, source, query) and the neuron input
side's vocab over HTTP equal the core; bad input is a named 400 (issue #25 item 3)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lenscope.circuits import head_card_wire, neuron_inputs_wire
from lenscope.wire import HeadCardResponse, NeuronInputsResponse
from lenscope.wire_codec import decode_json, decode_msgpack
from tests.server.helpers import MSGPACK, error_of

MODEL = "lenscope-attn-only-1l"


@pytest.mark.parametrize("accept", ["application/json", MSGPACK])
async def test_head_card_questions_equal_the_core(jp_fetch, attn_only, gelu, accept: str) -> None:
    params = {"source": "[", "query": " for"}
    response = await jp_fetch("lenscope", "api", "heads", MODEL, "0", "5", params=params, headers={"Accept": accept})
    got = decode_msgpack(response.body) if accept == MSGPACK else decode_json(response.body)
    HeadCardResponse.model_validate(json.loads(response.body) if accept != MSGPACK else {**got, "positional": None})
    want = head_card_wire(attn_only, MODEL, 0, 5, source="[", query=" for")
    assert got["vocab"] == "frequent" and got["tokens_read"] == 1000
    assert got["ov_top"] == want["ov_top"] and got["qk_top"] == want["qk_top"]
    assert got["source_row"] == want["source_row"] and got["query_row"] == want["query_row"]
    assert got["copying_score"] == want["copying_score"] and got["copying_score_frequent"] == want["copying_score_frequent"]
    np.testing.assert_array_equal(got["positional"]["scores"], want["positional"]["scores"])
    assert got["positional"]["scores"].shape == (256, 256)
    every = await jp_fetch("lenscope", "api", "heads", MODEL, "0", "5", params={"vocab": "all"}, headers={"Accept": accept})
    whole = decode_msgpack(every.body) if accept == MSGPACK else decode_json(every.body)
    assert whole["vocab"] == "all" and whole["ov_top"] == head_card_wire(attn_only, MODEL, 0, 5, vocab="all")["ov_top"]
    inputs = decode_json((await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", "77", "inputs",
                                         params={"vocab": "all"})).body)  # fmt: skip
    NeuronInputsResponse.model_validate(inputs)
    assert inputs["inputs"] == neuron_inputs_wire(gelu, "lenscope-gelu-1l", 0, 77, vocab="all")["inputs"]


@pytest.mark.parametrize(
    "route,params,needle",
    [
        (("heads", MODEL, "0", "9"), {}, "head must be between 0 and 7, got 9"),
        (("heads", MODEL, "2", "0"), {}, "layer must be between 0 and 0, got 2"),
        (("heads", MODEL, "0", "1"), {"source": " for the"}, "source: unknown token ' for the': it is 2 tokens"),
        (("heads", MODEL, "0", "1"), {"query": "70000"}, "query: token id 70000 is not in the vocabulary (0 to 4095)"),
        (("heads", MODEL, "0", "1"), {"vocab": "rare"}, "vocab must be 'frequent' or 'all', got 'rare'"),
        (("neurons", "lenscope-gelu-1l", "0", "1", "inputs"), {"vocab": "rare"}, "vocab must be 'frequent' or 'all'"),
    ],
)
async def test_head_card_bad_input_is_a_named_400(jp_fetch, route: tuple[str, ...], params: dict, needle: str) -> None:
    status, error, _ = await error_of(jp_fetch("lenscope", "api", *route, params=params))
    assert status == 400 and needle in error["error"]["message"], error
    assert error["error"]["code"] == "invalid_input"
