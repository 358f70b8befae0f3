"""Neuron descriptions over HTTP: on the shipped index's cards, and searchable by words."""

from __future__ import annotations

from lenscope.wire import NeuronCardResponse, NeuronSearchResponse
from tests.server.helpers import body_of, error_of


async def test_card_has_the_description_and_search_finds_it_by_words(jp_fetch) -> None:
    found = body_of(
        await jp_fetch(
            "lenscope", "api", "neurons", "lenscope-gelu-1l", "search", params={"q": "closing brackets", "by": "description"}
        )
    )
    NeuronSearchResponse.model_validate(found)
    assert found["by"] == "description" and len(found["neurons"]) >= 5
    scores = [n["score"] for n in found["neurons"]]
    assert scores == sorted(scores, reverse=True)  # best held-out F1 first
    for hit in found["neurons"]:
        assert "closing bracket" in hit["description"]["categories"]
        d = hit["description"]
        texts = [*d["pattern"], d["context"] or ""]
        assert any(set(t) & set(")]}") for t in texts) or d["token_class"] == "closing bracket"
    top = found["neurons"][0]
    card = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", str(top["layer"]), str(top["index"])))
    NeuronCardResponse.model_validate(card)
    d = card["description"]
    assert d == top["description"]
    assert d["text"].startswith("fires on ") and f"precision {d['precision']:.2f}, recall {d['recall']:.2f}" in d["text"]
    assert (
        d["precision"] == d["both"] / d["fires"] and d["recall"] == d["both"] / d["occurs"]
    )  # P(pattern | fires), P(fires | pattern)
    assert d["metrics"] == "precision = P(pattern | fires), recall = P(fires | pattern), on held-out text"
    # the pattern was chosen on the index's top examples: at least one of them peaks on it
    assert any(e["tokens"][e["max_token"]] == d["pattern"][-1] for e in card["examples"])
    # a token search carries the descriptions along
    by_token = body_of(await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "search", params={"q": " def"}))
    assert by_token["by"] == "token" and all(n["description"] for n in by_token["neurons"])


async def test_search_by_description_errors(jp_fetch) -> None:
    status, error, _ = await error_of(
        jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "search", params={"q": "x", "by": "vibes"})
    )
    assert status == 400 and error["error"]["code"] == "invalid_input"
    nothing = body_of(
        await jp_fetch("lenscope", "api", "neurons", "lenscope-gelu-1l", "search", params={"q": "zebras", "by": "description"})
    )
    assert nothing["neurons"] == []
