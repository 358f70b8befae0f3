"""Shared pieces of the benchmarks: models to time and texts of an exact token length."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lenscope.models.native import new_native_model, save_native, wrap_native
from lenscope.models.registry import DEFAULT_DIR, load_model

GPT2_SMALL_SHAPE = dict(d_model=768, n_layers=12, n_heads=12, d_head=64, d_mlp=3072, n_ctx=1024, d_vocab=50257)


def default_model() -> Any:
    return load_model("lenscope-gelu-1l")


GPT2_CONFIG = dict(
    GPT2_SMALL_SHAPE, act_fn="gelu_new", normalization_type="LN", attn_only=False, seed=0, default_prepend_bos=True
)


def gpt2_small_shaped(tokenizer: Any) -> Any:
    """GPT-2 small's shape (124M parameters, 50,257-token vocabulary) with random weights.

    Built offline; the default tokenizer supplies the ids (all < 4,096), which is enough for
    timing: the vocabulary's cost is in the unembedding and the log-softmax, both full size.
    """
    model = new_native_model(GPT2_CONFIG).eval()
    return wrap_native(model, GPT2_CONFIG, tokenizer, "gpt2-small-shaped (random)").eval()


def save_gpt2_small_shaped(folder: Path) -> None:
    """The same random model as a native checkpoint folder the server's worker can load."""
    save_native(new_native_model(GPT2_CONFIG), {**GPT2_CONFIG, "tokenizer_dir": str(DEFAULT_DIR / "tokenizer")}, folder)


def text_of_tokens(tokenizer: Any, n: int) -> str:
    """A stretch of real Python source that tokenizes to exactly ``n`` tokens."""
    from lenscope.models.stdlib_corpus import read_text, split_files

    split = split_files()
    source = "".join(read_text(split.root, f) or "" for f in split.held_out)
    ids = tokenizer(source, add_special_tokens=False)["input_ids"]
    for extra in range(0, 64):
        text: str = tokenizer.decode(ids[: n + extra])
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) == n:
            return text
    raise RuntimeError(f"no prefix of the corpus tokenizes to exactly {n} tokens")


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


@torch.inference_mode()
def bare_forward(model: Any, windows_batch: torch.Tensor) -> None:
    model(windows_batch)
