"""POST attribute over HTTP equals the core's attribution, in both encodings; bad input is a 400."""

from __future__ import annotations

import json

import pytest

from lenscope.attribution import attribute, attribution_to_wire
from lenscope.wire import AttributionResponse
from lenscope.wire_codec import decode_json, decode_msgpack, encode_msgpack, wire_equal
from tests.server.helpers import MSGPACK, body_of, error_of

TEXT = "def add(a, b):\n    return a + b\n"


async def post(jp_fetch, body: dict, accept: str = "application/json"):
    return await jp_fetch(
        "lenscope", "api", "attribute", method="POST", body=json.dumps(body),
        headers={"Content-Type": "application/json", "Accept": accept},
    )  # fmt: skip


@pytest.mark.parametrize("accept", ["application/json", MSGPACK])
async def test_attribution_equals_the_core(jp_fetch, gelu, accept: str) -> None:
    response = await post(jp_fetch, {"text": TEXT, "context": "import os\n", "position": 5, "top": 7}, accept)
    AttributionResponse.model_validate(body_of(response))
    got = decode_msgpack(response.body) if accept == MSGPACK else decode_json(response.body)
    expected = attribution_to_wire(attribute(gelu, TEXT, 5, context="import os\n", model_name="lenscope-gelu-1l"), 7)
    expected = decode_msgpack(encode_msgpack(expected))  # what the wire makes of it (dtypes, lists)
    assert wire_equal({k: v for k, v in got.items() if k != "timings_ms"}, expected)
    assert got["total"] == pytest.approx(got["value"], abs=1e-4) and len(got["top_neurons"]) == 7


async def test_attention_only_model_and_a_baseline(jp_fetch) -> None:
    got = body_of(
        await post(jp_fetch, {"text": TEXT, "position": 3, "model": "lenscope-attn-only-1l", "target": 5, "baseline": 9})
    )
    assert got["top_neurons"] == [] and (got["target"], got["baseline"]) == (5, 9)
    assert got["total"] == pytest.approx(got["value"], abs=1e-4)


@pytest.mark.parametrize(
    "body,words",
    [
        ({"text": TEXT, "position": 500}, "position must be between 0"),
        ({"text": TEXT, "position": 1, "target": 4096}, "target must be between 0 and 4095"),
        ({"text": TEXT, "position": -1}, "position: Input should be greater than or equal to 0"),
        ({"text": TEXT, "position": 1, "top": 0}, "top: Input should be greater than or equal to 1"),
        ({"text": "", "position": 0}, "text: String should have at least 1 character"),
    ],
)
async def test_bad_attribution_requests(jp_fetch, body: dict, words: str) -> None:
    status, error, _ = await error_of(post(jp_fetch, body))
    assert status == 400 and words in error["error"]["message"], error


async def test_head_card_and_neuron_inputs_from_the_weights(jp_fetch, attn_only, gelu) -> None:
    from lenscope.circuits import head_circuits, neuron_inputs
    from lenscope.wire import HeadCardResponse, NeuronInputsResponse

    card = body_of(await jp_fetch("lenscope", "api", "heads", "lenscope-attn-only-1l", "0", "2", params={"vocab": "all"}))
    HeadCardResponse.model_validate(card)
    direct = head_circuits(attn_only, 0, 2, top=20)
    assert [(p["source"], p["target"]) for p in card["ov_top"]] == [(i, j) for i, j, _ in direct.ov_top]
    assert card["copying_score"] == pytest.approx(direct.copying_score)
    strings = dict(zip(card["strings"]["ids"], card["strings"]["values"]))
    assert all(p["source"] in strings and p["target"] in strings for p in card["qk_top"])
    inputs = body_of(
        await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", "77", "inputs", params={"vocab": "all"})
    )
    NeuronInputsResponse.model_validate(inputs)
    assert [e["id"] for e in inputs["inputs"]] == [i for i, _ in neuron_inputs(gelu, 0, 77, top=20)]
    for route, words in (
        (("heads", "lenscope-attn-only-1l", "0", "8"), "head must be between 0 and 7"),
        (("heads", "lenscope-attn-only-1l", "3", "0"), "layer must be between 0 and 0"),
        (("neurons", "lenscope-attn-only-1l", "0", "1", "inputs"), "attention-only"),
    ):
        status, error, _ = await error_of(jp_fetch("lenscope", "api", *route))
        assert status == 400 and words in error["error"]["message"], error
    status, error, _ = await error_of(jp_fetch("lenscope", "api", "heads", "no-such-model", "0", "0"))
    assert status == 404 and error["error"]["code"] == "unknown_model"


async def post_attention(jp_fetch, body: dict, accept: str = "application/json"):
    return await jp_fetch(
        "lenscope", "api", "attention", method="POST", body=json.dumps(body),
        headers={"Content-Type": "application/json", "Accept": accept},
    )  # fmt: skip


@pytest.mark.parametrize("accept", ["application/json", MSGPACK])
async def test_attention_equals_the_core(jp_fetch, gelu, accept: str) -> None:
    from lenscope.attention import attend, attention_to_wire
    from lenscope.wire import AttentionResponse

    response = await post_attention(jp_fetch, {"text": TEXT, "context": "import os\n", "k": 5}, accept)
    AttentionResponse.model_validate(body_of(response))
    got = decode_msgpack(response.body) if accept == MSGPACK else decode_json(response.body)
    expected = attention_to_wire(attend(gelu, TEXT, context="import os\n", k=5, model_name="lenscope-gelu-1l"))
    expected = decode_msgpack(encode_msgpack(expected))
    assert wire_equal({k: v for k, v in got.items() if k != "timings_ms"}, expected)
    assert got["weights"].shape == (1, 8, len(got["tokens"]["ids"]), 5)


@pytest.mark.parametrize(
    "body,status,words",
    [
        ({"text": TEXT, "layers": [1]}, 400, "layer must be between 0 and 0"),
        ({"text": TEXT, "k": 0}, 400, "k: Input should be greater than or equal to 1"),
        ({"text": TEXT, "layers": []}, 400, "layers: List should have at least 1 item"),
        ({"text": "x = 1\n" * 6000, "k": 1024}, 413, "the limit is 2,000,000"),
    ],
)
async def test_bad_attention_requests(jp_fetch, body: dict, status: int, words: str) -> None:
    got_status, error, _ = await error_of(post_attention(jp_fetch, body))
    assert got_status == status and words in error["error"]["message"], error
