"""Build the indexes that ship with the package, over the default models' held-out corpus (the
standard-library files listed in ``held_out_files.txt``), so cards work right after install:

    python scripts/build_default_index.py                                   # lenscope-gelu-1l's neurons
    python scripts/build_default_index.py --model lenscope-gelu-2l          # both layers' neurons
    python scripts/build_default_index.py --sae lenscope-gelu-1l-mlp-topk   # the shipped SAE's features

Each is written to ``models/indexes/<model>`` (or ``<sae>`` for features), with descriptions.
"""

from __future__ import annotations

import argparse

from lenscope.index.build import BuildOptions, build_index
from lenscope.index.corpus import read_documents
from lenscope.index.store import write_index
from lenscope.models.registry import DEFAULT_DIR, load_model
from lenscope.models.sae_registry import load_named_sae
from lenscope.models.stdlib_corpus import stdlib_root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lenscope-gelu-1l")
    ap.add_argument("--sae", default=None, help="index this shipped SAE's features (its model is --model)")
    args = ap.parse_args()
    files = (DEFAULT_DIR / "held_out_files.txt").read_text(encoding="utf-8").split()
    root = stdlib_root()
    docs, skipped = read_documents(root, [f for f in files if (root / f).is_file()])
    model = load_model(args.model)
    sae = load_named_sae(args.sae) if args.sae else None
    arrays = build_index(model, docs, BuildOptions(k=20), sae=sae)
    tokenizer = {"name_or_path": "lenscope/models/default/tokenizer", "vocab": len(model.tokenizer)}
    out = DEFAULT_DIR.parent / "indexes" / (args.sae or args.model)
    write_index(
        arrays,
        out,
        model=args.model,
        n_layers=1 if sae else int(model.cfg.n_layers),
        tokenizer=tokenizer,
        docs=docs,
        skipped=skipped,
        root="<python stdlib>",
        sae=None if sae is None else {"name": sae.name, "hook_point": sae.hook_point, "d_sae": sae.d_sae},
    )
    print(f"wrote {out}: {len(docs)} files, {arrays.count:,} tokens")


if __name__ == "__main__":
    main()
