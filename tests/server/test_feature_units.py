"""Units over HTTP (issue #26 item 1), one server for the module: POST unit_activations (neurons and
SAE features by name) and feature interventions on POST analyze equal the core, in JSON and
msgpack; an unknown feature, a feature with no SAE or an SAE the model cannot feed, a value that is
not finite are named 400s."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import msgpack
import numpy as np
import pytest
from benchmarks.server import TOKEN, jupyter_server

from lenscope.activations import unit_activations, unit_activations_to_wire
from lenscope.analysis import analyze
from lenscope.interventions import Intervention
from lenscope.models.sae_registry import load_named_sae
from lenscope.wire import AnalyzeResponse, UnitActivationsResponse
from lenscope.wire_codec import decode_json, decode_msgpack

MSGPACK = "application/msgpack"
MODEL, SAE = "lenscope-gelu-1l", "lenscope-gelu-1l-mlp-topk"
CONTEXT = "import os\n"
TEXT = "def walk(root):\n    for name in os.listdir(root):\n        if name is not None:\n            yield name\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with jupyter_server(tmp_path_factory.mktemp("units-root"), "--LenscopeApp.worker_threads=2") as base:
        yield base


def post(base: str, route: str, body: dict[str, Any], *, send: str = "json", accept: str = "json") -> tuple[int, Any, bytes]:
    """``(status, decoded body, raw body)``: success bodies decoded to the wire dict (numpy arrays)."""
    data = msgpack.packb(body, use_bin_type=True) if send == "msgpack" else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}lenscope/api/{route}", data=data, method="POST", headers={
        "Authorization": f"token {TOKEN}", "Content-Type": MSGPACK if send == "msgpack" else "application/json",
        "Accept": MSGPACK if accept == "msgpack" else "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            raw = r.read()
            return r.status, decode_msgpack(raw) if accept == "msgpack" else decode_json(raw), raw
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, msgpack.unpackb(raw) if accept == "msgpack" else json.loads(raw), raw


@pytest.fixture(scope="module")
def shipped() -> Any:
    return load_named_sae(SAE)


def firing_features(gelu: Any, shipped: Any, n: int) -> list[int]:
    """``n`` features of the shipped SAE that fire on TEXT (from the core: which ones is not what is tested)."""
    acts = unit_activations(gelu, TEXT, [f"F{f}" for f in range(100)], sae=shipped, context=CONTEXT).activations
    return [int(f) for f in np.argsort(-(acts > 0).sum(0), kind="stable")[:n]]


@pytest.mark.parametrize("accept", ["json", "msgpack"])
def test_unit_activations_equal_the_core(server, gelu, shipped, accept: str) -> None:
    f = firing_features(gelu, shipped, 2)
    units = ["L0.N224", f"F{f[0]}", "l0.n5", f"f{f[1]}"]
    status, got, raw = post(server, "unit_activations", {"text": TEXT, "context": CONTEXT, "units": units, "sae": SAE},
                            send=accept, accept=accept)  # fmt: skip
    assert status == 200, got
    if accept == "json":
        UnitActivationsResponse.model_validate(json.loads(raw))
    want = unit_activations_to_wire(unit_activations(gelu, TEXT, units, sae=shipped, context=CONTEXT, model_name=MODEL))
    assert (
        got["units"]
        == want["units"]
        == [
            {"name": "L0.N224", "kind": "neuron", "layer": 0, "index": 224},
            {"name": f"F{f[0]}", "kind": "feature", "layer": None, "index": f[0]},
            {"name": "L0.N5", "kind": "neuron", "layer": 0, "index": 5},
            {"name": f"F{f[1]}", "kind": "feature", "layer": None, "index": f[1]},
        ]
    )
    assert got["sae"] == {"name": SAE, "hook_point": "blocks.0.mlp.hook_post", "d_sae": 2048} and got["model"] == MODEL
    assert got["activations"].dtype == np.float32 and (got["activations"][:, [1, 3]] > 0).any(0).all()
    np.testing.assert_allclose(got["activations"], want["activations"], atol=1e-5)
    np.testing.assert_array_equal(got["tokens"]["ids"], want["tokens"]["ids"])
    # neurons alone need no SAE; token ids run as given
    status, plain, _ = post(server, "unit_activations", {"text": "", "token_ids": [5, 6, 7], "units": ["L0.N224"]})
    assert status == 200 and plain["sae"] is None and plain["activations"].shape == (3, 1), plain
    np.testing.assert_allclose(plain["activations"], unit_activations(gelu, "", ["L0.N224"], token_ids=[5, 6, 7]).activations,
                               atol=1e-5)  # fmt: skip


def test_feature_interventions_equal_the_core_and_nothing_is_the_plain_model(server, gelu, shipped) -> None:
    f = firing_features(gelu, shipped, 2)
    ivs = [{"component": "feature", "index": f[0], "op": "steer", "value": 3.0, "positions": [1, 2]},
           {"component": "feature", "index": f[1], "op": "mean"}]  # fmt: skip
    status, got, raw = post(server, "analyze", {"text": TEXT, "context": CONTEXT, "sae": SAE, "interventions": ivs})
    assert status == 200, got
    AnalyzeResponse.model_validate(json.loads(raw))
    core = [Intervention("feature", None, f[0], "steer", 3.0, (1, 2)), Intervention("feature", None, f[1], "mean")]
    want = analyze(gelu, TEXT, context=CONTEXT, sae=shipped, interventions=core)
    np.testing.assert_allclose(got["predictions"]["actual_logprob"], want.predictions.actual_logprob, atol=1e-5, equal_nan=True)
    assert got["interventions"] == [{"label": f"F{f[0]} steer +3 @1,2", "mean_from": None},
                                    {"label": f"F{f[1]} mean", "mean_from": "selection"}]  # fmt: skip
    _, plain, _ = post(server, "analyze", {"text": TEXT, "context": CONTEXT})
    _, spliced, _ = post(server, "analyze", {"text": TEXT, "context": CONTEXT, "sae": SAE, "interventions": []})
    np.testing.assert_array_equal(spliced["predictions"]["actual_logprob"], plain["predictions"]["actual_logprob"])
    assert np.nanmax(np.abs(got["predictions"]["actual_logprob"] - plain["predictions"]["actual_logprob"])) > 1e-3


def feature_iv(**fields: Any) -> dict[str, Any]:
    return {"component": "feature", "index": 5, **fields}


@pytest.mark.parametrize(
    "route,body,send,message",
    [
        ("unit_activations", {"units": ["F99999"], "sae": SAE}, "json",
         f"units[0] F99999: SAE '{SAE}' has features F0 .. F2047"),
        ("unit_activations", {"units": ["L0.N1", "F5"]}, "json",
         "units[1] F5 is a feature, but no SAE is loaded for it: name its SAE (sae)"),
        ("unit_activations", {"units": ["F5"], "sae": SAE, "model": "lenscope-attn-only-1l"}, "json",
         f"SAE '{SAE}' reads 'blocks.0.mlp.hook_post', which model 'lenscope-attn-only-1l' does not have"),
        ("unit_activations", {"units": ["L0.H3"]}, "json", "units[0] L0.H3 is a head: only neurons (L0.N5) and SAE features"),
        ("unit_activations", {"units": ["L0.N4096"]}, "json", "units[0] L0.N4096: a layer has neurons N0 .. N1023"),
        ("unit_activations", {"units": ["neuron 5"]}, "json", "'neuron 5' is not a unit: write L0.N123 (a neuron), F123"),
        ("analyze", {"sae": SAE, "interventions": [feature_iv(index=99999)]}, "json",
         f"interventions[0] (feature zero): SAE '{SAE}' has features F0 .. F2047, not F99999"),
        ("analyze", {"interventions": [feature_iv()]}, "json",
         "interventions[0] (feature zero): F5 is a feature, but no SAE is loaded for it"),
        ("analyze", {"sae": SAE, "model": "lenscope-attn-only-1l", "interventions": [feature_iv()]}, "json",
         "which model 'lenscope-attn-only-1l' does not have"),
        ("analyze", {"sae": SAE, "interventions": [feature_iv(op="steer", value=float("nan"))]}, "msgpack",
         "interventions.0.value: Input should be a finite number"),
        ("analyze", {"sae": SAE, "interventions": [feature_iv(op="steer", value=float("inf"))]}, "json",
         "interventions.0.value: Input should be a finite number"),
        ("analyze", {"sae": SAE, "interventions": [feature_iv(layer=0)]}, "json",
         f"interventions[0] (feature zero): a feature takes no layer (SAE '{SAE}' reads blocks.0.mlp.hook_post)"),
        ("analyze", {"interventions": [{"component": "neuron", "index": 5}]}, "json",
         "interventions[0] (neuron zero): a neuron needs a layer"),
    ],
)  # fmt: skip
def test_bad_units_and_feature_interventions_are_named_400s(server, route: str, body: dict, send: str, message: str) -> None:
    status, error, _ = post(server, route, {"text": TEXT, **body}, send=send)
    assert status == 400 and error["error"]["code"] == "invalid_input", error
    assert message in error["error"]["message"], error


def test_an_unknown_sae_is_a_404_naming_what_there_is(server) -> None:
    status, error, _ = post(server, "unit_activations", {"text": TEXT, "units": ["F5"], "sae": "nope"})
    assert status == 404 and f"no SAE named 'nope' (available: {SAE}" in error["error"]["message"], error


def test_the_route_is_in_the_served_spec(server) -> None:
    req = urllib.request.Request(f"{server}lenscope/api/openapi.json", headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        spec = json.loads(r.read())
    assert set(spec["paths"]["/lenscope/api/unit_activations"]) == {"post"}  # so the fuzz test (test_fuzz.py) covers it
    assert "feature" in spec["components"]["schemas"]["InterventionWire"]["properties"]["component"]["enum"]
