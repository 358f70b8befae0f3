"""Held-out evaluation of next-token models on a token stream, with n-gram baselines.

Used by the training script to write the model card and by the tests to check the shipped
weights against it. Windows are ``[BOS] + n_ctx-1`` stream tokens, as ``analyze`` sees text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lenscope.models.stdlib_corpus import read_text

Forward = Callable[[torch.Tensor], torch.Tensor]


def token_stream(encode: Callable[[str], list[int]], root: Path, files: Iterable[str], eot: int) -> np.ndarray:
    """All files' tokens, each file preceded by ``eot`` (the document separator)."""
    parts: list[list[int]] = []
    for rel in files:
        text = read_text(root, rel)
        if text:
            parts.append([eot])
            parts.append(encode(text))
    return np.fromiter((t for p in parts for t in p), dtype=np.int64)


def eval_windows(stream: np.ndarray, n_ctx: int, bos: int) -> torch.Tensor:
    """Non-overlapping ``[BOS] + chunk`` windows covering the stream (the tail is dropped)."""
    step = n_ctx - 1
    n = len(stream) // step
    chunks = torch.from_numpy(stream[: n * step].reshape(n, step))
    return torch.cat([torch.full((n, 1), bos, dtype=torch.int64), chunks], dim=1)


@torch.no_grad()
def model_loss(forward: Forward, windows: torch.Tensor, batch: int = 32) -> float:
    """Mean cross-entropy (nats) of predicting every non-BOS token of each window."""
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        x = windows[i : i + batch]
        logits = forward(x)[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
        total += float(loss)
        count += x[:, 1:].numel()
    return total / count


@dataclass(frozen=True)
class Baselines:
    unigram: float
    bigram: float
    bigram_lambda: float


def ngram_baselines(train: np.ndarray, windows: torch.Tensor, vocab: int) -> Baselines:
    """Add-one unigram and an interpolated bigram, fitted on ``train``, scored on ``windows``.

    BOS is the document separator of the stream, so its bigram row is the separator's.
    The bigram's interpolation weight is the best of a grid *on the held-out data itself*, which
    can only flatter the baseline: the models must beat its best case.
    """
    uni = np.bincount(train, minlength=vocab).astype(np.float64) + 1.0
    p_uni = uni / uni.sum()
    pair = train[:-1] * vocab + train[1:]
    big = np.bincount(pair, minlength=vocab * vocab).reshape(vocab, vocab).astype(np.float64)
    row = big.sum(axis=1, keepdims=True)
    p_big = np.divide(big, row, out=np.zeros_like(big), where=row > 0)
    prev = windows[:, :-1].numpy().reshape(-1)
    nxt = windows[:, 1:].numpy().reshape(-1)
    unigram = float(-np.log(p_uni[nxt]).mean())
    best = (float("inf"), 0.0)
    for lam in np.linspace(0.05, 0.95, 19):
        loss = float(-np.log(lam * p_big[prev, nxt] + (1 - lam) * p_uni[nxt]).mean())
        best = min(best, (loss, float(lam)))
    return Baselines(unigram=unigram, bigram=best[0], bigram_lambda=best[1])
