"""Bad requests get a 4xx with ``{error: {code, message}}`` naming the problem, never a 500."""

from __future__ import annotations

import json

import msgpack
import pytest

from lenscope.validation import MAX_TEXT_CHARS
from tests.server.helpers import MSGPACK, error_of, post_analyze


async def raw_post(jp_fetch, body: bytes, ctype: str = "application/json", accept: str = "application/json"):
    return await jp_fetch(
        "lenscope", "api", "analyze", method="POST", body=body, headers={"Content-Type": ctype, "Accept": accept}
    )


@pytest.mark.parametrize(
    "body,ctype,status,code,message",
    [
        (b'{"text": "x"', "application/json", 400, "bad_request", "not valid JSON"),
        (b"\xc1\x00\xff", MSGPACK, 400, "bad_request", "not valid msgpack"),
        (b"[1, 2]", "application/json", 400, "bad_request", "must be an object"),
        (b"{}", "application/json", 400, "invalid_input", "text: Field required"),
        (b'{"text": 5}', "application/json", 400, "invalid_input", "text: Input should be a valid string"),
        (b'{"text": "x", "top_k": "3"}', "application/json", 400, "invalid_input", "top_k: Input should be a valid integer"),
        (b'{"text": "x", "bogus": 1}', "application/json", 400, "invalid_input", "bogus: Extra inputs are not permitted"),
        (b'{"text": "x"}', "text/csv", 415, "unsupported_media_type", "text/csv"),
        (json.dumps({"text": ""}).encode(), "application/json", 400, "invalid_input", "text: String should have at least 1"),
        (json.dumps({"text": "  \n"}).encode(), "application/json", 400, "invalid_input", "only whitespace"),
        (json.dumps({"text": "a\u0000b"}).encode(), "application/json", 400, "invalid_input", "NUL byte at character 1"),
        (b'{"text": "a\\ud800b"}', "application/json", 400, "invalid_input", "text: Input should be a valid string"),
        (b'{"text": "x", "model": "\\ud800"}', "application/json", 400, "invalid_input", "model: Input should be a valid"),
        (b'{"text": "x", "model": "a\\u0000"}', "application/json", 400, "invalid_input", "model: Value error, contains a NUL"),
        (
            json.dumps({"text": "x", "top_k": 0}).encode(),
            "application/json",
            400,
            "invalid_input",
            "top_k: Input should be greater",
        ),
        (json.dumps({"text": "x", "top_k": 101}).encode(), "application/json", 400, "invalid_input", "less than or equal to 100"),
        (json.dumps({"text": "x", "top_k": 2**70}).encode(), "application/json", 400, "invalid_input", "top_k"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "bad_request", "nested too deeply"),
        (json.dumps({"text": "x", "top_neurons": 101}).encode(), "application/json", 400, "invalid_input", "top_neurons"),
        (json.dumps({"text": "x", "model": "nope"}).encode(), "application/json", 404, "unknown_model", "unknown model 'nope'"),
        (json.dumps({"text": "x", "model": "/etc"}).encode(), "application/json", 404, "unknown_model", "'/etc'"),
    ],
)
async def test_bad_requests(jp_fetch, body: bytes, ctype: str, status: int, code: str, message: str) -> None:
    got_status, error, _ = await error_of(raw_post(jp_fetch, body, ctype))
    assert got_status == status and error["error"]["code"] == code, error
    assert message in error["error"]["message"], error


async def test_oversized_text_names_the_limit(jp_fetch) -> None:
    status, error, _ = await error_of(post_analyze(jp_fetch, {"text": "a" * (MAX_TEXT_CHARS + 1)}))
    assert status == 413 and error["error"]["code"] == "input_too_large"
    assert f"at most {MAX_TEXT_CHARS} characters" in error["error"]["message"]


async def test_body_over_the_size_limit(jp_fetch) -> None:
    body = json.dumps({"text": "a", "context": "b" * (5 * 2**20)}).encode()
    status, error, _ = await error_of(raw_post(jp_fetch, body))
    assert status == 413 and error["error"]["code"] == "body_too_large" and "limit is" in error["error"]["message"]


async def test_errors_come_back_in_msgpack_when_asked(jp_fetch) -> None:
    status, error, response = await error_of(raw_post(jp_fetch, msgpack.packb({"text": ""}), MSGPACK, MSGPACK))
    assert status == 400 and response.headers["Content-Type"] == MSGPACK
    assert error == {"error": {"code": "invalid_input", "message": "text: String should have at least 1 character"}}


async def test_unknown_route_and_method(jp_fetch) -> None:
    status, error, _ = await error_of(jp_fetch("lenscope", "api", "nothing-here"))
    assert status == 404 and error["error"]["code"] == "not_found"
    status, error, _ = await error_of(jp_fetch("lenscope", "api", "analyze"))  # GET on a POST route
    assert status == 405 and error["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "body,status,message",
    [
        ({"text": "x", "neurons": [{"layer": 0, "index": 5000}]}, 400, "neuron index must be between 0 and 1023"),
        ({"text": "x", "neurons": [{"layer": 0}]}, 400, "neurons.0.index: Field required"),
        ({"text": "x", "neurons": [{"layer": 2**64, "index": 1}]}, 400, "neurons.0.layer: Input should be less than"),
        ({"text": "x", "neurons": [{"layer": 0, "index": -(2**70)}]}, 400, "neurons.0.index"),
        ({"text": "x", "neurons": []}, 400, "neurons: List should have at least 1"),
        ({"text": "x", "neurons": [{"layer": 0, "index": 1}], "model": "lenscope-attn-only-1l"}, 400, "attention-only"),
        ({"text": " \n", "neurons": [{"layer": 0, "index": 1}]}, 400, "text is only whitespace"),
    ],
)
async def test_bad_activation_requests(jp_fetch, body: dict, status: int, message: str) -> None:
    request = jp_fetch(
        "lenscope", "api", "activations", method="POST", body=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    got_status, error, _ = await error_of(request)
    assert got_status == status and message in error["error"]["message"], error
