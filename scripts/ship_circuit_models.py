"""Ship the 2-layer models trained by ``train_circuit_models.py`` and measure what their cards say.

    python scripts/ship_circuit_models.py --from .cache/train/out            # copy, measure, write the card
    python scripts/ship_circuit_models.py --measure-only                     # re-measure the shipped weights

Copies ``<from>/<model>/{config.json,model.safetensors}`` into ``models/default/<model>`` (the
tokenizer stays shared), then measures each shipped 2-layer model the way the card reports it:
held-out loss (the same windows as the 1-layer pair), the induction probe (50 frequent tokens then
the same 50 again, 8 sequences, seed 0: ``lenscope probe induction``), every head's role scores,
and the in-context gain with the induction heads (score >= 0.3) zero-ablated. Writes them into
``metrics.json`` (``models``, ``held_out_loss``, ``circuits``) and re-renders ``MODEL_CARD.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lenscope.headscores import ROLE_THRESHOLD, ROLES, induction_probe
from lenscope.models.frequent import frequent_tokens, shipped_token_counts
from lenscope.models.heldout import eval_windows, model_loss, token_stream
from lenscope.models.registry import load_model
from lenscope.models.stdlib_corpus import split_files
from train_default_models import OUT, write_card

MODELS = {"attn-only-2l": "lenscope-attn-only-2l", "gelu-2l": "lenscope-gelu-2l"}


def copy_trained(source: Path, folder: str) -> dict:
    """The trained folder's weights into the package; its ``training.json`` back (for the card)."""
    src, dst = source / folder, OUT / folder
    dst.mkdir(exist_ok=True)
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    config["tokenizer_dir"] = "../tokenizer"
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(src / "model.safetensors", dst / "model.safetensors")
    return json.loads((src / "training.json").read_text(encoding="utf-8"))


def measure(name: str, windows: torch.Tensor) -> dict:
    model = load_model(name)
    with torch.no_grad():
        held = model_loss(model, windows)
    pool = frequent_tokens(model, counts=shipped_token_counts(name, model.cfg.d_vocab))
    probe = induction_probe(model, model_name=name, seed=0, pool=pool)
    heads = [(la, h) for la, h, s in probe.top("induction", model.cfg.n_layers * model.cfg.n_heads) if s >= ROLE_THRESHOLD]
    ablated = induction_probe(model, model_name=name, seed=0, pool=pool, ablate=heads) if heads else None
    return {
        "held_out_loss": round(held, 4),
        "params": sum(p.numel() for p in model.parameters()),
        "probe": {"length": 50, "sequences": 8, "seed": 0, "pool": "the 1,000 most frequent tokens of the shipped corpus"},
        "loss_first": round(float(probe.loss_first or 0), 3),
        "loss_second": round(float(probe.loss_second or 0), 3),
        "in_context_gain": round(float(probe.in_context_gain or 0), 3),
        "scores": {r: np.round(probe.scores[r], 3).tolist() for r in ROLES},
        "roles": [[probe.role_of(la, h)[0] for h in range(model.cfg.n_heads)] for la in range(model.cfg.n_layers)],
        "induction_heads": [f"L{la}.H{h}" for la, h in heads],
        "gain_with_induction_heads_zeroed": None if ablated is None else round(float(ablated.in_context_gain or 0), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="source", type=Path, default=Path(".cache/train/out"))
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--measure-only", action="store_true")
    args = ap.parse_args()
    metrics = json.loads((OUT / "metrics.json").read_text(encoding="utf-8"))
    training = {} if args.measure_only else {folder: copy_trained(args.source, folder) for folder in args.models}
    tok = load_model("lenscope-gelu-1l").tokenizer
    split = split_files()
    files = (OUT / "held_out_files.txt").read_text(encoding="utf-8").split()

    def encode(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    windows = eval_windows(token_stream(encode, split.root, files, tok.bos_token_id), 256, tok.bos_token_id)
    circuits = metrics.setdefault("circuits", {})
    for folder in MODELS:
        if not (OUT / folder / "model.safetensors").is_file():
            continue
        found = measure(MODELS[folder], windows)
        circuits[folder] = found
        metrics["held_out_loss"][folder] = found["held_out_loss"]
        entry = metrics["models"].setdefault(folder, {})
        entry.update(held_out_loss=found["held_out_loss"], params=found["params"])
        if folder in training:
            t = training[folder]
            # a continued run: the card's time is both runs' (the first run's kept once)
            first = entry.setdefault("first_run_seconds", entry.get("train_seconds", 0.0)) if t["init_from"] else 0.0
            entry.update(train_seconds=round(first + t["train_seconds"], 1), final_train_loss=t["final_train_loss"],
                         training={k: t[k] for k in ("steps", "batch", "lr", "seed", "repeat_share", "init_from",
                                                     "tokens_seen", "threads")})  # fmt: skip
        print(folder, json.dumps({k: v for k, v in found.items() if k not in ("scores", "roles")}), flush=True)
    (OUT / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    write_card(metrics, OUT)


if __name__ == "__main__":
    main()
