"""Talking to the lenscope API in tests: both encodings, and error bodies."""

from __future__ import annotations

import json
from typing import Any

import msgpack
from tornado.httpclient import HTTPClientError, HTTPResponse

from lenscope.wire_codec import decode_json, decode_msgpack

MSGPACK = "application/msgpack"


def body_of(response: HTTPResponse) -> Any:
    ctype = response.headers.get("Content-Type", "")
    if ctype.startswith(MSGPACK):
        return msgpack.unpackb(response.body, raw=False)
    return json.loads(response.body)


def token_texts(wire: dict[str, Any], text: str) -> list[str]:
    """The tokens' texts, sliced from the request's text by the response's spans."""
    return [text[s:e] for s, e in zip(wire["tokens"]["start"].tolist(), wire["tokens"]["end"].tolist())]


def decoded(response: HTTPResponse) -> dict[str, Any]:
    """An analyze response decoded to the wire dict (numpy arrays), whatever its encoding."""
    if response.headers.get("Content-Type", "").startswith(MSGPACK):
        return decode_msgpack(response.body)
    return decode_json(response.body)


async def post_analyze(jp_fetch: Any, body: dict[str, Any], *, encoding: str = "json", accept: str = "json") -> HTTPResponse:
    if encoding == "msgpack":
        data, ctype = msgpack.packb(body, use_bin_type=True), MSGPACK
    else:
        data, ctype = json.dumps(body).encode(), "application/json"
    headers = {"Content-Type": ctype, "Accept": MSGPACK if accept == "msgpack" else "application/json"}
    result: HTTPResponse = await jp_fetch("lenscope", "api", "analyze", method="POST", body=data, headers=headers)
    return result


async def error_of(coro: Any) -> tuple[int, dict[str, Any], HTTPResponse]:
    """Await a request expected to fail; its status, decoded error body and response."""
    try:
        await coro
    except HTTPClientError as exc:
        assert exc.response is not None
        return exc.code, body_of(exc.response), exc.response
    raise AssertionError("the request was expected to fail")
