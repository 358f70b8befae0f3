"""Where an index build's shards are computed: in this process (the default), or on Ray
(``lenscope.index.ray_engine``). An engine only runs :func:`lenscope.index.reduce.reduce_shard`
on the shards it is given and hands each result back as it is done; planning, storing and
merging stay with the build, so every engine gives the same index, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from lenscope.index.reduce import Encode, reduce_shard
from lenscope.index.shards import Shard, ShardResult


@dataclass(frozen=True)
class ReduceSettings:
    k: int
    before: int
    after: int
    batch_windows: int


@dataclass(frozen=True)
class ShardTask:
    shard: Shard
    read: Callable[[], np.ndarray]  # int32 [w, 1 + body]: the shard's windows after a BOS, read when it runs

    @property
    def lengths(self) -> np.ndarray:
        """int32 [w]: real tokens per window."""
        return self.shard.windows[:, 2].copy()


Done = Callable[[ShardTask, ShardResult], None]


class Engine(Protocol):
    name: str

    def run(self, tasks: list[ShardTask], settings: ReduceSettings, on_done: Done,
            on_tokens: Callable[[int], None], cancelled: Callable[[], bool] | None) -> None: ...  # fmt: skip


@dataclass
class LocalEngine:
    """The shards one after another, on the model already loaded in this process."""

    model: Any
    hooks: list[str]
    encode: Encode
    name: str = "local"

    def run(self, tasks: list[ShardTask], settings: ReduceSettings, on_done: Done,
            on_tokens: Callable[[int], None], cancelled: Callable[[], bool] | None) -> None:  # fmt: skip
        for task in tasks:
            result = reduce_shard(self.model, self.hooks, self.encode, task.read(), task.lengths, k=settings.k,
                                  before=settings.before, after=settings.after, batch_windows=settings.batch_windows,
                                  cancelled=cancelled, on_batch=on_tokens)  # fmt: skip
            on_done(task, result)
