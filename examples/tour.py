"""A small module to try lenscope on: familiar Python that a stdlib-trained model knows well."""

import os
import sys
from collections import defaultdict


def word_counts(path):
    """Count the words of a text file."""
    counts = defaultdict(int)
    with open(path, encoding="utf-8") as f:
        for line in f:
            for word in line.split():
                counts[word.lower()] += 1
    return dict(counts)


class Stack:
    def __init__(self):
        self._items = []

    def push(self, item):
        self._items.append(item)

    def pop(self):
        if not self._items:
            raise IndexError("pop from empty stack")
        return self._items.pop()

    def __len__(self):
        return len(self._items)


if __name__ == "__main__":
    for name, n in sorted(word_counts(sys.argv[1]).items(), key=lambda kv: -kv[1])[:10]:
        print(f"{n:6d} {name}")
    print(os.getcwd())
