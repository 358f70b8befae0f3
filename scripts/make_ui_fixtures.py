"""Write real analyze, attribute, attention and logit lens payloads for the frontend's unit tests
(``labextension/test/fixtures``).

    python scripts/make_ui_fixtures.py

Same model, texts and encoders as the server; timings are zeroed so the files are stable.
``tests/contract/test_fixtures.py`` fails when they no longer match what the core produces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "labextension" / "test" / "fixtures"
REQUESTS: dict[str, dict[str, Any]] = {
    "unicode": {"text": "naïve café 😀 🫠 日本語 e\u0301 — “quotes”\n", "context": "# notes\n", "top_k": 10, "top_neurons": 5},
    "code": {
        "text": "def push(self, item):\n    self._items.append(item)\n",
        "context": "class Stack:\n",
        "top_k": 10,
        "top_neurons": 5,
    },
}


ATTRIBUTE: dict[str, Any] = {**{k: REQUESTS["code"][k] for k in ("text", "context")}, "position": 5, "top": 10,
                             "model": "lenscope-gelu-1l"}  # fmt: skip


ATTENTION: dict[str, Any] = {**{k: REQUESTS["code"][k] for k in ("text", "context")}, "k": 16,
                             "model": "lenscope-gelu-1l"}  # fmt: skip


LOGIT_LENS: dict[str, Any] = {**{k: REQUESTS["code"][k] for k in ("text", "context")}, "positions": [0, 5, 16], "top_k": 5,
                              "model": "lenscope-gelu-1l"}  # fmt: skip


def logit_lens_payload(model: Any, request: dict[str, Any]) -> dict[str, Any]:
    from lenscope.logitlens import logit_lens, logit_lens_to_wire

    result = logit_lens(model, request["text"], context=request["context"], positions=request["positions"],
                        top_k=request["top_k"], model_name=request["model"])  # fmt: skip
    return {**logit_lens_to_wire(result), "timings_ms": {}}


def write_logit_lens(model: Any) -> None:
    from lenscope.wire_codec import encode_json, encode_msgpack

    (FIXTURES / "logit_lens.request.json").write_text(json.dumps(LOGIT_LENS, indent=1) + "\n", encoding="utf-8")
    wire = logit_lens_payload(model, LOGIT_LENS)
    (FIXTURES / "logit_lens.msgpack").write_bytes(encode_msgpack(wire))
    (FIXTURES / "logit_lens.json").write_bytes(encode_json(wire))
    print("wrote logit_lens")


def attention_payload(model: Any, request: dict[str, Any]) -> dict[str, Any]:
    from lenscope.attention import attend, attention_to_wire

    result = attend(model, request["text"], context=request["context"], k=request["k"], model_name=request["model"])
    return attention_to_wire(result)


def attribute_payload(model: Any, request: dict[str, Any]) -> dict[str, Any]:
    from lenscope.attribution import attribute, attribution_to_wire

    result = attribute(model, request["text"], request["position"], context=request["context"], model_name=request["model"])
    return {**attribution_to_wire(result, request["top"]), "timings_ms": {}}


def payload(model: Any, request: dict[str, Any]) -> dict[str, Any]:
    from lenscope.analysis import analyze
    from lenscope.wire_convert import to_wire

    wire = to_wire(analyze(model, model_name="lenscope-gelu-1l", **request))
    wire["timings_ms"] = {k: 0.0 for k in wire["timings_ms"]}
    return wire


def main() -> None:
    from lenscope.models.registry import load_model
    from lenscope.wire_codec import encode_json, encode_msgpack

    model = load_model("lenscope-gelu-1l")
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, request in REQUESTS.items():
        wire = payload(model, request)
        (FIXTURES / f"{name}.request.json").write_text(json.dumps(request, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        (FIXTURES / f"{name}.msgpack").write_bytes(encode_msgpack(wire))
        (FIXTURES / f"{name}.json").write_bytes(encode_json(wire))
        print(f"wrote {name}")
    (FIXTURES / "attribute.request.json").write_text(json.dumps(ATTRIBUTE, indent=1) + "\n", encoding="utf-8")
    wire = attribute_payload(model, ATTRIBUTE)
    (FIXTURES / "attribute.msgpack").write_bytes(encode_msgpack(wire))
    (FIXTURES / "attribute.json").write_bytes(encode_json(wire))
    print("wrote attribute")
    (FIXTURES / "attention.request.json").write_text(json.dumps(ATTENTION, indent=1) + "\n", encoding="utf-8")
    wire = attention_payload(model, ATTENTION)
    (FIXTURES / "attention.msgpack").write_bytes(encode_msgpack(wire))
    (FIXTURES / "attention.json").write_bytes(encode_json(wire))
    print("wrote attention")
    write_logit_lens(model)


if __name__ == "__main__":
    main()
