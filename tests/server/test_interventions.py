"""POST analyze with interventions over HTTP: equal to the core, cached apart from the plain
analysis, a neuron's mean from the model's index when it has one; bad interventions are 400s."""

from __future__ import annotations

import numpy as np
import pytest

from lenscope.analysis import analyze
from lenscope.interventions import Intervention
from lenscope.wire import AnalyzeResponse
from tests.server.helpers import body_of, decoded, error_of, post_analyze

TEXT = "def add(a, b):\n    return a + b\n"


async def test_intervened_analysis_equals_the_core_and_is_cached_apart(jp_fetch, gelu) -> None:
    ivs = [{"component": "neuron", "layer": 0, "index": 5, "op": "zero"},
           {"component": "head", "layer": 0, "index": 2, "op": "scale", "value": 0.5, "positions": [1, 2]}]  # fmt: skip
    plain = await post_analyze(jp_fetch, {"text": TEXT})
    changed = await post_analyze(jp_fetch, {"text": TEXT, "interventions": ivs}, encoding="msgpack", accept="msgpack")
    AnalyzeResponse.model_validate(body_of(changed))
    got = decoded(changed)
    want = analyze(
        gelu, TEXT, interventions=[Intervention("neuron", 0, 5, "zero"), Intervention("head", 0, 2, "scale", 0.5, (1, 2))]
    )
    np.testing.assert_allclose(got["predictions"]["actual_logprob"], want.predictions.actual_logprob, atol=1e-6, equal_nan=True)
    assert [a["label"] for a in got["interventions"]] == ["L0.N5 zero", "L0.H2 x0.5 @1,2"]
    again = await post_analyze(jp_fetch, {"text": TEXT})
    assert again.body == plain.body and "cache" in again.headers["Server-Timing"]  # the plain analysis is intact
    assert decoded(again)["interventions"] == []
    repeat = await post_analyze(jp_fetch, {"text": TEXT, "interventions": ivs}, encoding="msgpack", accept="msgpack")
    assert repeat.body == changed.body and "cache" in repeat.headers["Server-Timing"]


async def test_mean_ablation_uses_the_models_index(jp_fetch, gelu) -> None:
    from lenscope.index.card import neuron_row
    from lenscope.index.store import open_index
    from lenscope_server.indexes import _shipped_dir

    index = open_index(_shipped_dir() / "lenscope-gelu-1l")  # the neuron index (feature indexes ship beside it)
    mean = float(index.arrays["mean"][neuron_row(index, 0, 7)])
    got = decoded(
        await post_analyze(
            jp_fetch, {"text": TEXT, "interventions": [{"component": "neuron", "layer": 0, "index": 7, "op": "mean"}]}
        )
    )
    assert got["interventions"] == [{"label": "L0.N7 mean", "mean_from": "index"}]
    want = analyze(gelu, TEXT, interventions=[Intervention("neuron", 0, 7, "set", mean)])
    np.testing.assert_allclose(got["predictions"]["actual_logprob"], want.predictions.actual_logprob, atol=1e-5, equal_nan=True)
    heads = decoded(
        await post_analyze(
            jp_fetch, {"text": TEXT, "interventions": [{"component": "head", "layer": 0, "index": 1, "op": "mean"}]}
        )
    )
    assert heads["interventions"][0]["mean_from"] == "selection"


@pytest.mark.parametrize(
    "iv,words",
    [
        (
            {"component": "head", "layer": 0, "index": 1, "op": "set", "value": 1},
            "a head can be zero, mean, scale, steer, patch, not set",
        ),
        ({"component": "neuron", "layer": 0, "index": 5000}, "index must be between 0 and 1023"),
        ({"component": "neuron", "layer": 3, "index": 1}, "layer must be between 0 and 0"),
        ({"component": "neuron", "layer": 0, "index": 1, "positions": [400]}, "positions must be text tokens"),
        ({"component": "neuron", "layer": 0, "index": 1, "op": "explode"}, "interventions.0.op"),
        ({"component": "neuron", "layer": 0, "index": 1, "value": 1e9}, "interventions.0.value"),
    ],
)
async def test_bad_interventions(jp_fetch, iv: dict, words: str) -> None:
    status, error, _ = await error_of(post_analyze(jp_fetch, {"text": TEXT, "interventions": [iv]}))
    assert status == 400 and words in error["error"]["message"], error


CLEAN, CORRUPTED = "x = 'cat'\nprint(", "y = 'cat'\nprint("


async def test_patching_grid_equals_the_core_and_a_cell_applies_inline(jp_fetch, gelu) -> None:
    import json

    from lenscope.patching import patch_grid, patch_grid_to_wire
    from lenscope.wire import PatchResponse
    from lenscope.wire_codec import decode_msgpack, encode_msgpack, wire_equal
    from tests.server.helpers import MSGPACK

    x, y = (gelu.tokenizer(t, add_special_tokens=False)["input_ids"][0] for t in ("x", "y"))
    body = {"clean": CLEAN, "corrupted": CORRUPTED, "target": x, "baseline": y}
    response = await jp_fetch("lenscope", "api", "patch", method="POST", body=json.dumps(body),
                              headers={"Content-Type": "application/json", "Accept": MSGPACK})  # fmt: skip
    PatchResponse.model_validate(body_of(response))
    got = decode_msgpack(response.body)
    want = decode_msgpack(
        encode_msgpack(patch_grid_to_wire(patch_grid(gelu, CLEAN, CORRUPTED, x, y, model_name="lenscope-gelu-1l")))
    )
    assert wire_equal({k: v for k, v in got.items() if k != "timings_ms"}, want)
    assert got["resid_pre"][0, 0] == pytest.approx(1.0, abs=1e-4)
    # the strongest head cell, applied inline as a patch intervention on the corrupted text
    layer, head, pos = np.unravel_index(np.argmax(got["heads"]), got["heads"].shape)
    iv = {"component": "head", "layer": int(layer), "index": int(head), "op": "patch", "source": CLEAN, "positions": [int(pos)]}
    patched = decoded(await post_analyze(jp_fetch, {"text": CORRUPTED, "interventions": [iv]}))
    plain = decoded(await post_analyze(jp_fetch, {"text": CORRUPTED}))
    assert patched["interventions"][0]["label"] == f"L{layer}.H{head} patched @{pos}"
    assert not np.allclose(patched["predictions"]["top_logprobs"][-1], plain["predictions"]["top_logprobs"][-1])


async def test_bad_patch_requests(jp_fetch) -> None:
    import json

    for body, words in (
        ({"clean": CLEAN, "corrupted": CORRUPTED + "zz", "target": 1, "baseline": 2}, "same token count"),
        ({"clean": CLEAN, "corrupted": CORRUPTED, "target": 99999, "baseline": 2}, "target must be between 0 and 4095"),
        ({"clean": CLEAN, "corrupted": CORRUPTED, "target": 1}, "baseline: Field required"),
    ):
        status, error, _ = await error_of(jp_fetch("lenscope", "api", "patch", method="POST", body=json.dumps(body),
                                                   headers={"Content-Type": "application/json"}))  # fmt: skip
        assert status == 400 and words in error["error"]["message"], error
