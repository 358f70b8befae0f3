"""The wire codecs round-trip exactly and agree with each other and with the schema."""

from __future__ import annotations

import json

import msgpack
import numpy as np

from lenscope.analysis import analyze
from lenscope.wire import AnalyzeResponse
from lenscope.wire_codec import decode_json, decode_msgpack, encode_json, encode_msgpack, wire_equal
from lenscope.wire_convert import to_wire

TEXT = 'for i, ch in enumerate("héllo 😀"):\n    print(i, ch)\n'


def test_round_trip_is_exact_in_both_codecs(gelu) -> None:
    wire = to_wire(analyze(gelu, TEXT))
    from_mp = decode_msgpack(encode_msgpack(wire))
    from_js = decode_json(encode_json(wire))
    assert wire_equal(from_mp, wire) and wire_equal(from_js, wire) and wire_equal(from_mp, from_js)
    # re-encoding a decoded object gives the same bytes
    assert encode_msgpack(from_mp) == encode_msgpack(wire)
    assert encode_json(from_js) == encode_json(wire)


def test_nan_travels_as_null_in_json(gelu) -> None:
    payload = json.loads(encode_json(to_wire(analyze(gelu, TEXT))))
    assert payload["predictions"]["actual_logprob"]["data"][-1] is None
    assert decode_json(json.dumps(payload))["predictions"]["actual_logprob"][-1] != 0


def test_precision_is_as_documented(gelu) -> None:
    result = analyze(gelu, TEXT)
    wire = decode_msgpack(encode_msgpack(to_wire(result)))
    p = wire["predictions"]
    assert p["actual_logprob"].dtype == np.float32
    np.testing.assert_array_equal(p["actual_logprob"], result.predictions.actual_logprob)
    assert p["top_logprobs"].dtype == np.float16
    lp = result.predictions.top_logprobs
    err = np.abs(p["top_logprobs"].astype(np.float32) - lp)
    assert np.all(err <= np.maximum(np.abs(lp), 1) * 2**-11)
    assert p["top_ids"].dtype == np.uint16  # a 4k vocabulary fits in two bytes
    np.testing.assert_array_equal(p["top_ids"], result.predictions.top_ids)


def test_payloads_validate_against_the_schema(gelu) -> None:
    wire = to_wire(analyze(gelu, TEXT, top_neurons=3))
    AnalyzeResponse.model_validate(json.loads(encode_json(wire)))
    AnalyzeResponse.model_validate(msgpack.unpackb(encode_msgpack(wire)))


def test_msgpack_is_smaller_than_json(gelu) -> None:
    wire = to_wire(analyze(gelu, TEXT * 10))
    assert len(encode_msgpack(wire)) < 0.5 * len(encode_json(wire))
