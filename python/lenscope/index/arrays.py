"""What an index holds, as numpy arrays (no torch): the build fills it, the store writes and
opens it, so the server reads indexes without importing torch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lenscope.index.corpus_store import StoredCorpus
from lenscope.index.descriptions import Descriptions
from lenscope.index.samples import Samples

HIST_EDGES = np.linspace(-1.0, 15.0, 65, dtype=np.float32)
"""Fixed histogram bins ``[edge_i, edge_i+1)``, plus one underflow and one overflow bin, for every neuron."""


@dataclass
class IndexArrays:
    """Everything an index holds, in memory; ``lenscope.index.store`` writes and reads it."""

    k: int
    before: int
    after: int
    window_tokens: int
    top_values: np.ndarray  # float32 [N, k], -inf where there is no example
    top_windows: np.ndarray  # int32 [N, k], -1 where there is no example
    top_positions: np.ndarray  # int32 [N, k], token position of the max inside its window
    top_context: np.ndarray  # float16 [N, k, before + 1 + after], NaN outside the window
    windows: np.ndarray  # int32 [W, 3]: document, first token (in the document), tokens
    corpus: StoredCorpus  # the documents' text and tokens, on disk (lenscope.index.corpus_store)
    count: int  # activations seen per neuron (= corpus tokens)
    mean: np.ndarray  # float32 [N]
    max: np.ndarray  # float32 [N]
    hist: np.ndarray  # int64 [N, len(HIST_EDGES) + 1]
    logit_top_ids: np.ndarray  # int32 [N, 10]: tokens a neuron's output boosts most (W_out @ W_U)
    logit_top_values: np.ndarray
    logit_bottom_ids: np.ndarray  # most suppressed
    logit_bottom_values: np.ndarray
    strings: dict[int, str] = field(default_factory=dict)  # decoded strings of the ids used
    descriptions: Descriptions | None = None  # one-line descriptions (lenscope.index.describe), when computed
    samples: Samples | None = None  # quantile and random examples (lenscope.index.samples), recorded with them

    @property
    def tokens(self) -> np.ndarray:
        """[T]: the corpus's token ids, documents one after another (memory-mapped)."""
        return self.corpus.array("tokens")

    @property
    def doc_offsets(self) -> np.ndarray:
        """int64 [D + 1]: first token of each document in ``tokens``."""
        return self.corpus.array("doc_offsets")
