"""Notebooks are read as their cells' sources (not their JSON), and every place that names a
location in one (card examples, comparison rows, stored documents) names the cell and offsets
within that cell's source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lenscope.compare import compare
from lenscope.index.build import BuildOptions, build_index
from lenscope.index.card import neuron_card, stored_document
from lenscope.index.corpus import CELL_SEPARATOR, locate, read_documents
from lenscope.index.store import open_index, write_index

CELLS = [
    ("markdown", "# Word counts\n\nCount the words of a file."),
    ("code", "import collections\n\ndef word_counts(text):\n    return collections.Counter(text.split())\n"),
    ("code", "counts = word_counts(open('tour.py').read())\ncounts.most_common(5)"),
]


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nb")
    cells = [{"cell_type": t, "metadata": {}, "source": src.splitlines(keepends=True), "outputs": [], "execution_count": None}
             for t, src in CELLS]  # fmt: skip
    for c, (t, _) in zip(cells, CELLS):
        if t == "markdown":
            del c["outputs"], c["execution_count"]
    (root / "tour.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (root / "broken.ipynb").write_text("{not json")
    return root


def test_a_notebook_is_its_cells_sources(notebook: Path) -> None:
    docs, skipped = read_documents(notebook, ["."])
    assert [s.reason for s in skipped] == ["not a readable notebook (invalid JSON)"]
    (doc,) = docs
    assert doc.text == CELL_SEPARATOR.join(src for _, src in CELLS) and '"outputs"' not in doc.text
    assert [doc.text[s:e] for s, e in doc.cells] == [src for _, src in CELLS]
    s2 = doc.cells[2][0]
    assert locate(doc.cells, s2 + 3) == (2, 3) and locate((), 17) == (None, 17)


def test_card_examples_and_stored_text_name_the_cell(gelu, notebook: Path, tmp_path: Path) -> None:
    docs, skipped = read_documents(notebook, ["tour.ipynb"])
    arrays = build_index(gelu, docs, BuildOptions(k=4, window=24))
    write_index(arrays, tmp_path / "ix", model="m", n_layers=1, tokenizer={}, docs=docs, skipped=skipped, root=".")
    index = open_index(tmp_path / "ix")
    seen_cells = set()
    for neuron in range(0, 1024, 97):
        for ex in neuron_card(index, 0, neuron)["examples"]:
            assert ex["cell"] is not None and ex["available"] is False
            source = CELLS[ex["cell"]][1]
            peak = ex["tokens"][ex["max_token"]]  # a token may run on into the separator after its cell
            assert source[ex["max_char_start"] : ex["max_char_start"] + len(peak)] == peak[: len(source) - ex["max_char_start"]]
            assert 0 <= ex["char_start"] <= ex["max_char_start"] <= ex["char_end"] <= len(source)
            seen_cells.add(ex["cell"])
    assert seen_cells == {0, 1, 2}
    assert stored_document(index, "tour.ipynb", 1)["text"] == CELLS[1][1]
    assert stored_document(index, "tour.ipynb")["text"] == docs[0].text


def test_comparison_rows_name_the_cell(gelu, attn_only, notebook: Path) -> None:
    docs, _ = read_documents(notebook, ["tour.ipynb"])
    rows = compare(gelu, attn_only, docs, ("a", "b"))
    assert {r.cell for r in rows} == {0, 1, 2}
    for r in rows:
        source = CELLS[r.cell][1]
        assert source[r.start : r.end] == r.token[: r.end - r.start] and r.end <= len(source)
        assert r.line == source[: r.start].count("\n") + 1
        assert source[: r.start].endswith(r.before) and source[r.end :].startswith(r.after)
