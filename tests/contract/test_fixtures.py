"""The frontend's unit tests decode committed server payloads; they must match the core today."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scripts.make_ui_fixtures import (
    ATTENTION,
    ATTRIBUTE,
    FIXTURES,
    LOGIT_LENS,
    REQUESTS,
    attention_payload,
    attribute_payload,
    logit_lens_payload,
    payload,
)

from lenscope.wire_codec import decode_json, decode_msgpack


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_fixture_matches_the_core(gelu, name: str) -> None:
    assert json.loads((FIXTURES / f"{name}.request.json").read_text(encoding="utf-8")) == REQUESTS[name]
    fresh = payload(gelu, REQUESTS[name])
    for committed in (
        decode_msgpack((FIXTURES / f"{name}.msgpack").read_bytes()),
        decode_json((FIXTURES / f"{name}.json").read_bytes()),
    ):
        assert committed.keys() == fresh.keys()
        for group in ("tokens", "strings"):
            for key, value in fresh[group].items():
                assert np.array_equal(np.asarray(committed[group][key]), np.asarray(value)), (name, group, key)
        for key, value in fresh["predictions"].items():
            got = committed["predictions"][key]
            assert got.dtype == value.dtype and got.shape == value.shape, key
            if value.dtype.kind == "f":
                np.testing.assert_allclose(got, value, atol=2e-2, equal_nan=True)
            elif key != "top_ids":  # near-ties may swap between machines; checked by value below
                assert np.array_equal(got, value), key
        same = (committed["predictions"]["top_ids"] == fresh["predictions"]["top_ids"]).mean()
        assert same > 0.98, "python scripts/make_ui_fixtures.py"


def test_attribution_fixture_matches_the_core(gelu) -> None:
    assert json.loads((FIXTURES / "attribute.request.json").read_text(encoding="utf-8")) == ATTRIBUTE
    fresh = attribute_payload(gelu, ATTRIBUTE)
    for committed in (
        decode_msgpack((FIXTURES / "attribute.msgpack").read_bytes()),
        decode_json((FIXTURES / "attribute.json").read_bytes()),
    ):
        assert committed.keys() == fresh.keys()
        for key, value in fresh.items():
            if isinstance(value, np.ndarray):
                assert committed[key].shape == value.shape, key
                np.testing.assert_allclose(committed[key], value, atol=2e-3, err_msg=key)
            elif isinstance(value, float):
                assert committed[key] == pytest.approx(value, abs=1e-3), key
            elif key != "top_neurons":
                assert committed[key] == value, key
        assert [(n["layer"], n["index"]) for n in committed["top_neurons"]][:5] == [
            (n["layer"], n["index"]) for n in fresh["top_neurons"]
        ][:5]


def test_attention_fixture_matches_the_core(gelu) -> None:
    assert json.loads((FIXTURES / "attention.request.json").read_text(encoding="utf-8")) == ATTENTION
    fresh = attention_payload(gelu, ATTENTION)
    for committed in (
        decode_msgpack((FIXTURES / "attention.msgpack").read_bytes()),
        decode_json((FIXTURES / "attention.json").read_bytes()),
    ):
        assert committed.keys() == fresh.keys()
        for group in ("tokens", "strings"):
            for key, value in fresh[group].items():
                assert np.array_equal(np.asarray(committed[group][key]), np.asarray(value)), (group, key)
        for key in ("model", "layers", "n_heads"):
            assert committed[key] == fresh[key], key
        np.testing.assert_allclose(committed["weights"].astype(np.float32), fresh["weights"].astype(np.float32), atol=2e-3)
        np.testing.assert_allclose(committed["positional_share"], fresh["positional_share"], atol=2e-3, equal_nan=True)
        # near-ties may swap sources between machines: the same source where the weights differ clearly
        w = fresh["weights"].astype(np.float32)
        gap = np.abs(np.diff(w, axis=-1, prepend=np.inf)) > 1e-2
        gap &= np.abs(np.diff(w, axis=-1, append=-np.inf)) > 1e-2
        assert np.array_equal(committed["sources"][gap], fresh["sources"][gap])


def test_logit_lens_fixture_matches_the_core(gelu) -> None:
    assert json.loads((FIXTURES / "logit_lens.request.json").read_text(encoding="utf-8")) == LOGIT_LENS
    fresh = logit_lens_payload(gelu, LOGIT_LENS)
    for committed in (
        decode_msgpack((FIXTURES / "logit_lens.msgpack").read_bytes()),
        decode_json((FIXTURES / "logit_lens.json").read_bytes()),
    ):
        assert committed.keys() == fresh.keys()
        for key in ("model", "positions", "rows", "strings"):
            assert committed[key] == fresh[key], key
        for key in ("top_ids", "actual_ids", "actual_rank"):
            assert np.array_equal(committed[key], fresh[key]), key
        for key in ("top_logprobs", "actual_logprob"):
            np.testing.assert_allclose(committed[key].astype(np.float32), fresh[key].astype(np.float32), atol=2e-3)
