"""Bad requests get a 4xx with ``{error: {code, message}}`` naming the problem, never a 500."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import msgpack
import numpy as np
import pytest

from lenscope.validation import MAX_TEXT_CHARS
from lenscope.wire import IndexesResponse
from tests.server.helpers import MSGPACK, body_of, error_of, post_analyze


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
        (json.dumps({"text": ""}).encode(), "application/json", 400, "invalid_input", "text is empty"),
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
    assert error == {"error": {"code": "invalid_input", "message": "text is empty: select some text to analyze"}}


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


# --- a workspace index whose content cannot be read or decoded: listed as broken, skipped -------

SHIPPED_INDEX = Path(__file__).resolve().parents[2] / "python" / "lenscope" / "models" / "indexes" / "lenscope-gelu-1l"


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def _edit_manifest(**fields: object) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        (folder / "manifest.json").write_text(json.dumps({**_manifest(folder), **fields}), encoding="utf-8")

    return edit


def _non_utf8_manifest(folder: Path) -> None:
    raw = (folder / "manifest.json").read_bytes()
    (folder / "manifest.json").write_bytes(raw.replace(b'"lenscope-gelu-1l"', b'"lenscope-gelu-1l\xff\xfe"', 1))


def _resave(name: str, convert: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        array = np.load(folder / f"{name}.npy", allow_pickle=False)
        np.save(folder / f"{name}.npy", convert(array), allow_pickle=False)

    return edit


BROKEN_CONTENT: dict[str, tuple[Callable[[Path], None], str]] = {
    "manifest-not-utf8": (_non_utf8_manifest, "manifest.json is not valid UTF-8"),
    "manifest-nested-deeply": (lambda f: (f / "manifest.json").write_text("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    "manifest-a-list": (lambda f: (f / "manifest.json").write_text(json.dumps([_manifest(f)])), "not a complete lenscope index"),
    "manifest-sae-a-string": (_edit_manifest(sae="some-sae"), "manifest's sae"),
    "manifest-tokens-a-string": (_edit_manifest(tokens="many"), "manifest's tokens: Input should be a valid integer"),
    "manifest-model-a-list": (_edit_manifest(model=["lenscope-gelu-1l"]), "manifest's model: Input should be a valid string"),
    "manifest-cells-malformed": (
        lambda f: _edit_manifest(files=[{**_manifest(f)["files"][0], "cells": [5]}, *_manifest(f)["files"][1:]])(f),
        "manifest's files.0.cells.0",
    ),
    "manifest-hist-edges-text": (_edit_manifest(hist_edges="-1.0"), "manifest's hist_edges"),
    "strings-not-utf8": (lambda f: (f / "strings.json").write_bytes(b'{"1": "\xff"}'), "strings.json is not valid UTF-8"),
    "strings-a-list": (lambda f: (f / "strings.json").write_text("[1, 2]"), "strings.json is not a table"),
    "top-windows-float": (_resave("top_windows", lambda a: a.astype(np.float64)), "top_windows.npy holds float64"),
    "top-values-text": (_resave("top_values", lambda a: a.astype("U8")), "top_values.npy holds <U8"),
    "windows-float": (_resave("windows", lambda a: a.astype(np.float32)), "windows.npy holds float32"),
    "tokens-complex": (_resave("tokens", lambda a: a.astype(np.complex64)), "tokens.npy holds complex64"),
    "logit-ids-wrong-shape": (_resave("logit_top_ids", lambda a: a[:, :1, None]), "logit_top_ids.npy has shape (1024, 1, 1)"),
}


@pytest.mark.parametrize("case", BROKEN_CONTENT)
async def test_an_unreadable_index_is_listed_broken_and_skipped(jp_fetch, jp_root_dir: Path, case: str) -> None:
    """Whatever is wrong inside a workspace index (bytes that are not UTF-8, JSON of the wrong
    shape, an array of the wrong dtype or shape), the listing, cards and searches answer: the
    index is listed as broken with its problem and the shipped index serves its model."""
    bad = jp_root_dir / ".lenscope" / "indexes" / "bad"
    shutil.copytree(SHIPPED_INDEX, bad)
    corrupt, problem = BROKEN_CONTENT[case]
    corrupt(bad)
    uncaught: list[str] = []
    handler = _Collect(uncaught)
    loggers = [logging.getLogger(n) for n in ("", "tornado", "tornado.application", "ServerApp", "lenscope_server")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        listing = body_of(await jp_fetch("lenscope", "api", "indexes"))
        IndexesResponse.model_validate(listing)
        entry = next(i for i in listing["indexes"] if i["name"] == "bad")
        assert entry["state"] == "broken" and "index bad is broken: " in (entry["problem"] or ""), entry
        assert problem in entry["problem"], entry
        card = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "0", "5"))
        assert card["index_path"] == "lenscope-gelu-1l" and card["examples"]  # the shipped one: "bad" is skipped
        for by in ("token", "description"):
            found = body_of(
                await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "search", params={"q": "self", "by": by})
            )
            assert found["neurons"], by
        status, error, _ = await error_of(jp_fetch("lenscope", "api", "indexes", "bad", "document", params={"path": "abc.py"}))
        assert status == 404 and "broken" in error["error"]["message"], error
        again = body_of(await jp_fetch("lenscope", "api", "indexes"))  # the cached verdict, still broken
        assert next(i for i in again["indexes"] if i["name"] == "bad")["state"] == "broken"
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    assert not [m for m in uncaught if "Uncaught exception" in m or "Traceback" in m], uncaught


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage() + ("\nTraceback" if record.exc_info else ""))


async def test_an_index_with_values_out_of_range_answers_broken_not_500(jp_fetch, jp_root_dir: Path) -> None:
    """An index that opens (right dtypes and shapes) but points past its own arrays: its lookups
    answer 404 naming it broken, never a server error."""
    bad = jp_root_dir / ".lenscope" / "indexes" / "bad"
    shutil.copytree(SHIPPED_INDEX, bad)
    _resave("top_windows", lambda a: np.where(a >= 0, a + 10**6, a).astype(a.dtype))(bad)
    for route, params in ((("0", "5"), None), (("search",), {"q": "self"})):
        status, error, _ = await error_of(jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", *route, params=params))
        assert status == 404 and "index bad is broken" in error["error"]["message"], (route, error)
