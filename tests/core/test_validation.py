"""Bad input gets a typed error naming the problem, never a crash."""

from __future__ import annotations

import time

import pytest

from lenscope.analysis import analyze
from lenscope.errors import InputTooLarge, InvalidInput, ModelUnavailable, UnknownModel
from lenscope.models.registry import load_model, resolve
from lenscope.validation import MAX_RESPONSE_CELLS, MAX_TEXT_CHARS, MAX_TEXT_TOKENS, MAX_TOP_K


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "text is empty"),
        ("   \n\t ", "only whitespace"),
        ("abc\x00def", "NUL byte at character 3"),
        ("ab\ud800cd", "lone UTF-16 surrogate (U+D800) at character 2"),
        ("x\udfff", "lone UTF-16 surrogate (U+DFFF) at character 1"),
        (123, "text must be a string"),
    ],
)
def test_bad_text(gelu, text: object, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        analyze(gelu, text)  # type: ignore[arg-type]
    assert message in err.value.message and err.value.code == "invalid_input"


def test_text_over_the_limit_names_the_limit(gelu) -> None:
    with pytest.raises(InputTooLarge) as err:
        analyze(gelu, "a" * (MAX_TEXT_CHARS + 1))
    assert f"{MAX_TEXT_CHARS:,}" in err.value.message and err.value.code == "input_too_large"


def test_bad_context(gelu) -> None:
    with pytest.raises(InvalidInput, match="context contains a NUL"):
        analyze(gelu, "ok", context="a\x00")


@pytest.mark.parametrize("top_k", [0, -1, MAX_TOP_K + 1, 4097, 10**9])
def test_top_k_out_of_range(gelu, top_k: int) -> None:
    with pytest.raises(InvalidInput, match=f"top_k must be between 1 and {MAX_TOP_K}"):
        analyze(gelu, "hello", top_k=top_k)


def test_top_k_at_its_limit_works(gelu) -> None:
    got = analyze(gelu, "x = 1", top_k=MAX_TOP_K)
    assert got.predictions.top_ids.shape[1] == MAX_TOP_K


def test_response_size_is_bounded_before_the_forward(gelu) -> None:
    """tokens x (top_k + top_neurons) over the bound: refused after tokenizing, naming the numbers."""
    line = "x = 1\n"
    per_line = len(gelu.tokenizer(line * 2)["input_ids"]) // 2  # the tokenizer adds no BOS here
    text = line * (MAX_RESPONSE_CELLS // (2 * MAX_TOP_K) // per_line + 10)
    with pytest.raises(InputTooLarge, match=f"the limit is {MAX_RESPONSE_CELLS:,}"):
        analyze(gelu, text, top_k=MAX_TOP_K, top_neurons=MAX_TOP_K)
    with pytest.raises(InputTooLarge, match=f"the limit is {MAX_TEXT_TOKENS:,}"):
        analyze(gelu, line * (MAX_TEXT_TOKENS // per_line + 10), top_k=1, top_neurons=0)


@pytest.mark.parametrize("value", [-1, 101, 1.5, True, "3"])
def test_top_neurons_out_of_range_or_type(gelu, value: object) -> None:
    with pytest.raises(InvalidInput, match="top_neurons"):
        analyze(gelu, "hello", top_neurons=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["no-such-model", "", "../../etc"])
def test_unknown_model_is_a_fast_typed_error(name: str) -> None:
    start = time.monotonic()
    with pytest.raises(UnknownModel) as err:
        load_model(name)
    assert time.monotonic() - start < 10  # the TransformerLens name table import dominates
    assert err.value.code == "unknown_model"


@pytest.mark.parametrize("name,repo", [("gelu-1l", "NeelNanda/GELU_1L512W_C4_Code"), ("gpt2", "gpt2")])
def test_uncached_hub_model_fails_fast_naming_what_is_missing(name: str, repo: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache, whatever this machine holds
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    resolve("lenscope-gelu-1l")  # warm the name table so the timing below is the lookup alone
    start = time.monotonic()
    with pytest.raises(ModelUnavailable) as err:
        load_model(name)
    assert time.monotonic() - start < 2
    assert repo in err.value.message and "config.json" in err.value.message
