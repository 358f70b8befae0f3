"""Every route over HTTP on a real Jupyter server, in both encodings, against the core."""

from __future__ import annotations

import pytest

from lenscope.analysis import analyze
from lenscope.wire import AnalyzeResponse, HealthResponse, ModelsResponse
from lenscope.wire_codec import wire_equal
from lenscope.wire_convert import to_wire
from tests.server.helpers import MSGPACK, body_of, decoded, post_analyze

TEXT = "def add(a, b):\n    return a + b  # 😀 日本\n"
CONTEXT = "import math\n\n"


def without_server_fields(wire: dict) -> dict:
    out = {k: v for k, v in wire.items() if k != "timings_ms"}
    return out


def server_timing(response) -> dict[str, str]:
    """``Server-Timing: total;dur=1.2, worker;dur=1.0, source;desc="cache"`` -> {total: "1.2", ..., source: "cache"}."""
    out = {}
    for part in response.headers["Server-Timing"].split(","):
        name, _, value = part.strip().partition(";")
        out[name] = value.split("=", 1)[1].strip('"')
    return out


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize("accept", ["json", "msgpack"])
async def test_analyze_equals_the_core_result(jp_fetch, gelu, encoding: str, accept: str) -> None:
    body = {"text": TEXT, "context": CONTEXT, "top_k": 7, "top_neurons": 4}
    response = await post_analyze(jp_fetch, body, encoding=encoding, accept=accept)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith(MSGPACK if accept == "msgpack" else "application/json")
    got = decoded(response)
    expected = to_wire(analyze(gelu, TEXT, context=CONTEXT, top_k=7, top_neurons=4, model_name="lenscope-gelu-1l"))
    assert wire_equal(without_server_fields(got), without_server_fields(expected))
    for key in ("tokenize", "forward", "derive"):
        assert got["timings_ms"][key] >= 0
    timing = server_timing(response)
    assert timing["source"] == "worker" and float(timing["total"]) >= float(timing["worker"]) > 0
    AnalyzeResponse.model_validate(body_of(response))


async def test_identical_request_is_served_from_cache(jp_fetch) -> None:
    """The cached bytes go out as they are: the same body, byte for byte, with no worker time."""
    first = await post_analyze(jp_fetch, {"text": TEXT}, accept="msgpack")
    second = await post_analyze(jp_fetch, {"text": TEXT}, accept="msgpack")
    assert server_timing(first)["source"] == "worker" and server_timing(second)["source"] == "cache"
    assert "worker" not in server_timing(second) and first.body == second.body
    as_json = await post_analyze(jp_fetch, {"text": TEXT})  # each encoding is computed (and cached) on its own
    assert server_timing(as_json)["source"] == "worker"
    assert wire_equal(without_server_fields(decoded(as_json)), without_server_fields(decoded(first)))
    health = body_of(await jp_fetch("lenscope", "api", "health"))
    assert health["cache"]["hits"] == 1 and health["cache"]["misses"] == 2
    assert health["cache"]["bytes"] == len(first.body) + len(as_json.body) <= health["cache"]["max_bytes"]


async def test_other_model_by_name(jp_fetch, attn_only) -> None:
    got = decoded(await post_analyze(jp_fetch, {"text": TEXT, "model": "lenscope-attn-only-1l"}, accept="msgpack"))
    expected = to_wire(analyze(attn_only, TEXT, model_name="lenscope-attn-only-1l"))
    assert got["model"] == "lenscope-attn-only-1l"
    assert wire_equal(without_server_fields(got), without_server_fields(expected))
    assert got["predictions"]["neuron_index"].shape[1] == 0


@pytest.mark.parametrize("accept", ["json", "msgpack"])
async def test_models_lists_defaults_with_shapes_and_state(jp_fetch, accept: str) -> None:
    headers = {"Accept": MSGPACK if accept == "msgpack" else "application/json"}
    listing = body_of(await jp_fetch("lenscope", "api", "models", headers=headers))
    ModelsResponse.model_validate(listing)
    models = {m["name"]: m for m in listing["models"]}
    assert listing["default"] == "lenscope-gelu-1l" and models["lenscope-gelu-1l"]["default"]
    gelu = models["lenscope-gelu-1l"]
    assert gelu["loadable"] and gelu["state"] == "unloaded"
    assert gelu["shape"] == {"n_layers": 1, "d_model": 256, "d_mlp": 1024, "d_vocab": 4096, "n_ctx": 256, "n_heads": 8}
    assert models["lenscope-attn-only-1l"]["shape"]["d_mlp"] is None
    await post_analyze(jp_fetch, {"text": "x = 1"})
    listing = body_of(await jp_fetch("lenscope", "api", "models", headers=headers))
    assert {m["name"]: m["state"] for m in listing["models"]}["lenscope-gelu-1l"] == "loaded"


async def test_health_reports_worker_models_queue_and_cache(jp_fetch) -> None:
    health = body_of(await jp_fetch("lenscope", "api", "health"))
    HealthResponse.model_validate(health)
    assert health["worker"]["state"] == "stopped" and health["queue"]["depth"] == 0  # lazy start (preload off)
    await post_analyze(jp_fetch, {"text": "import os"})
    health = body_of(await jp_fetch("lenscope", "api", "health", headers={"Accept": MSGPACK}))
    HealthResponse.model_validate(health)
    assert health["worker"]["state"] == "ready" and isinstance(health["worker"]["pid"], int)
    assert health["models"]["loaded"] == ["lenscope-gelu-1l"] and health["models"]["loading"] == []
    assert health["cache"]["size"] == 1


@pytest.mark.parametrize("accept", ["json", "msgpack"])
async def test_activations_equal_the_core(jp_fetch, gelu, accept: str) -> None:
    import json

    from lenscope.analysis import neuron_activations
    from lenscope.wire import ActivationsResponse
    from lenscope.wire_convert import activations_to_wire

    body = {"text": TEXT, "context": CONTEXT, "neurons": [{"layer": 0, "index": 3}, {"layer": 0, "index": 900}]}
    headers = {"Content-Type": "application/json", "Accept": MSGPACK if accept == "msgpack" else "application/json"}
    response = await jp_fetch("lenscope", "api", "activations", method="POST", body=json.dumps(body), headers=headers)
    ActivationsResponse.model_validate(body_of(response))
    got = decoded(response)
    expected = activations_to_wire(
        neuron_activations(gelu, TEXT, [(0, 3), (0, 900)], context=CONTEXT, model_name="lenscope-gelu-1l")
    )
    assert wire_equal(
        {k: v for k, v in got.items() if k != "timings_ms"}, {k: v for k, v in expected.items() if k != "timings_ms"}
    )
    assert float(server_timing(response)["total"]) >= got["timings_ms"]["forward"]


async def test_model_load_shows_as_loading_not_a_hang(jp_fetch) -> None:
    import asyncio

    first = asyncio.ensure_future(post_analyze(jp_fetch, {"text": "import os"}))  # starts the worker, loads the model
    seen: set[str] = set()
    while not first.done():
        health = body_of(await jp_fetch("lenscope", "api", "health"))
        seen.update(health["models"]["loading"])
        await asyncio.sleep(0.05)
    assert (await first).code == 200
    assert "lenscope-gelu-1l" in seen, "health never showed the model loading"
    health = body_of(await jp_fetch("lenscope", "api", "health"))
    assert health["models"] == {"loaded": ["lenscope-gelu-1l"], "loading": []}


async def test_neuron_card_from_the_shipped_index(jp_fetch) -> None:
    from lenscope.wire import NeuronCardResponse

    for accept in ("application/json", MSGPACK):
        card = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", "5", headers={"Accept": accept}))
        NeuronCardResponse.model_validate(card)
        assert card["layer"] == 0 and card["index"] == 5 and len(card["examples"]) == 20
        assert card["examples"][0]["value"] >= card["examples"][-1]["value"]
        assert len(card["logit_boosted"]) == 10 and card["stats"]["count"] > 100_000
    health = body_of(await jp_fetch("lenscope", "api", "health"))
    assert health["worker"]["state"] == "stopped"  # served from the index: no worker needed


@pytest.mark.parametrize(
    "path,status,code",
    [
        (("lenscope-gelu-1l", "0", "1024"), 400, "invalid_input"),
        (("lenscope-gelu-1l", "1", "0"), 400, "invalid_input"),
        (("lenscope-attn-only-1l", "0", "0"), 404, "index_not_found"),
        (("nope", "0", "0"), 404, "index_not_found"),
    ],
)
async def test_neuron_card_errors(jp_fetch, path, status: int, code: str) -> None:
    from tests.server.helpers import error_of

    got, error, _ = await error_of(jp_fetch("lenscope", "api", "neurons", *path))
    assert got == status and error["error"]["code"] == code, error


async def test_neuron_search_by_token(jp_fetch) -> None:
    from lenscope.wire import NeuronSearchResponse

    found = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "search", params={"q": " self"}))
    NeuronSearchResponse.model_validate(found)
    assert found["neurons"] and found["neurons"][0]["hits"] >= 1
    scores = [n["score"] for n in found["neurons"]]
    assert scores == sorted(scores, reverse=True)
    # and the top neuron's card really has an example peaking on that token
    top = found["neurons"][0]
    card = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", str(top["layer"]), str(top["index"])))
    assert any(e["tokens"][e["max_token"]].strip() == "self" for e in card["examples"])
    from tests.server.helpers import error_of

    status, error, _ = await error_of(jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "search", params={"q": ""}))
    assert status == 400 and "token is empty" in error["error"]["message"]
