"""Build the neuron index that ships with the package: the default GELU model over its held-out
corpus (the standard-library files listed in ``held_out_files.txt``), so neuron cards work
right after install.

    python scripts/build_default_index.py
"""

from __future__ import annotations

from lenscope.index.build import BuildOptions, build_index
from lenscope.index.corpus import read_documents
from lenscope.index.store import write_index
from lenscope.models.registry import DEFAULT_DIR, load_model
from lenscope.models.stdlib_corpus import stdlib_root

OUT = DEFAULT_DIR.parent / "indexes" / "lenscope-gelu-1l"


def main() -> None:
    files = (DEFAULT_DIR / "held_out_files.txt").read_text(encoding="utf-8").split()
    root = stdlib_root()
    docs, skipped = read_documents(root, [f for f in files if (root / f).is_file()])
    model = load_model("lenscope-gelu-1l")
    arrays = build_index(model, docs, BuildOptions(k=20))
    tokenizer = {"name_or_path": "lenscope/models/default/tokenizer", "vocab": len(model.tokenizer)}
    write_index(
        arrays, OUT, model="lenscope-gelu-1l", n_layers=1, tokenizer=tokenizer, docs=docs, skipped=skipped, root="<python stdlib>"
    )
    print(f"wrote {OUT}: {len(docs)} files, {arrays.count:,} tokens")


if __name__ == "__main__":
    main()
