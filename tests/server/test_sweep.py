"""POST sweep over HTTP equals the core's sweep, in both encodings (exact and estimate, a
selection, with the shipped SAE); bad input is a 400 that names the problem."""

from __future__ import annotations

import json

import pytest

from lenscope.sweep import sweep, sweep_to_wire
from lenscope.wire import SweepResponse
from lenscope.wire_codec import decode_json, decode_msgpack, encode_msgpack, wire_equal
from tests.server.helpers import MSGPACK, body_of, error_of

TEXT = "def add(a, b):\n    return a + b\n"
SAE = "lenscope-gelu-1l-mlp-topk"


async def post(jp_fetch, body: dict, accept: str = "application/json"):
    return await jp_fetch(
        "lenscope", "api", "sweep", method="POST", body=json.dumps(body),
        headers={"Content-Type": "application/json", "Accept": accept},
    )  # fmt: skip


@pytest.mark.parametrize(
    "accept,asked",
    [
        ("application/json", {"position": 5, "top": 7}),
        (MSGPACK, {"position": 5, "method": "estimate"}),
        ("application/json", {"position": 2, "last": 6, "context": "import os\n"}),
        (MSGPACK, {"position": 5, "sae": SAE, "top": 12}),
    ],
)
async def test_the_route_equals_the_core(jp_fetch, gelu, accept: str, asked: dict) -> None:
    response = await post(jp_fetch, {"text": TEXT, **asked}, accept)
    SweepResponse.model_validate(body_of(response))
    got = decode_msgpack(response.body) if accept == MSGPACK else decode_json(response.body)
    kwargs = {k: v for k, v in asked.items() if k not in ("position", "top")}
    if "sae" in kwargs:
        from lenscope.models.sae_registry import load_named_sae

        kwargs["sae"] = load_named_sae(SAE)
    core = sweep(gelu, TEXT, asked["position"], model_name="lenscope-gelu-1l", **kwargs)
    expected = decode_msgpack(encode_msgpack(sweep_to_wire(core, asked.get("top", 20))))
    assert wire_equal(
        {k: v for k, v in got.items() if k != "timings_ms"}, {k: v for k, v in expected.items() if k != "timings_ms"}
    )
    assert len(got["units"]) == asked.get("top", 20) and [u["rank"] for u in got["units"]] == list(
        range(1, len(got["units"]) + 1)
    )
    assert got["method"] == asked.get("method", "exact")
    assert ("estimate" in got["note"]) == (got["method"] == "estimate")
    assert got["measure"] == ("mean_abs_delta_logprob" if "last" in asked else "delta_logprob")
    assert (got["features"] is not None) == ("sae" in asked)


async def test_an_attention_only_model_has_heads_only(jp_fetch) -> None:
    got = body_of(await post(jp_fetch, {"text": TEXT, "position": 3, "model": "lenscope-attn-only-1l"}))
    assert {u["kind"] for u in got["units"]} == {"head"} and len(got["units"]) == 8
    assert got["neurons"]["shape"] == [1, 0] and got["rank_correlation"] is not None


@pytest.mark.parametrize(
    "body,words",
    [
        ({"text": TEXT, "position": 500}, "position must be between 0"),
        ({"text": "", "position": 0}, "text: String should have at least 1 character"),
        ({"text": "   ", "position": 0}, "text is only whitespace"),
        ({"text": TEXT, "position": 1, "target": 4096}, "target must be between 0 and 4095"),
        ({"text": TEXT, "position": 4, "last": 2}, "last must be between 4 and"),
        ({"text": TEXT, "position": 1, "last": 3, "target": 7}, "target goes with one prediction"),
        ({"text": TEXT, "position": 1, "method": "fast"}, "method: Input should be 'exact' or 'estimate'"),
        ({"text": TEXT, "position": 1, "top": 0}, "top: Input should be greater than or equal to 1"),
    ],
)
async def test_bad_sweep_requests(jp_fetch, body: dict, words: str) -> None:
    status, error, _ = await error_of(post(jp_fetch, body))
    assert status == 400 and words in error["error"]["message"], error


async def test_an_sae_that_does_not_fit_is_refused(jp_fetch) -> None:
    status, error, _ = await error_of(post(jp_fetch, {"text": TEXT, "position": 1, "model": "lenscope-attn-only-1l", "sae": SAE}))
    assert status == 400 and "which model 'lenscope-attn-only-1l' does not have" in error["error"]["message"], error
    status, error, _ = await error_of(post(jp_fetch, {"text": TEXT, "position": 1, "sae": "no-such-sae"}))
    assert status == 404 and "no SAE named 'no-such-sae'" in error["error"]["message"], error
