"""Train the 2-layer default models so that induction heads form: `attn-only-2l` and `gelu-2l`.

Same tokenizer, width and data as the 1-layer pair (``train_default_models.py``), with two
changes that a 2-core CPU budget needs for the canonical 2-layer circuit to appear:
- **more steps** than the first `gelu-2l` (which saw 6.5M tokens and formed no induction head);
- **repeated spans mixed in**: in a share of each batch's rows (``--repeat-share``, default 0.25)
  a span of the row is repeated later in the same row. Half of those rows repeat a span of real
  training text (length 8-64, a gap of 0-32 real tokens between the copies); the other half are
  the classic probe's shape, 16-64 tokens drawn uniformly from the 1,000 most frequent training
  tokens, then the same tokens again. Natural text repeats too rarely within 255 tokens for a
  small model to learn to copy in ~10M tokens; both kinds teach "what followed this token last
  time comes next" and nothing else.

Both models see the same batches (one generator seed). Each run checkpoints every
``--every`` steps into ``--work`` (model, optimiser, scheduler, generator state, losses), so a
killed run resumes where it stopped: run the same command again.

    python scripts/train_circuit_models.py --steps 3000 --threads 1
    python scripts/train_circuit_models.py --models gelu-2l --steps 3000
    python scripts/train_circuit_models.py --models gelu-2l --init-from python/lenscope/models/default/gelu-2l \
        --steps 800 --lr 1e-3 --repeat-share 0.3   # continue the first gelu-2l instead

writes ``<out>/<model>/{config.json,model.safetensors}`` and ``<out>/<model>/training.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lenscope.models.heldout import eval_windows, model_loss, token_stream
from lenscope.models.native import new_native_model, save_native
from lenscope.models.stdlib_corpus import split_files
from train_default_models import OUT, SHAPE, model_config

MODELS = {"attn-only-2l": (2, True), "gelu-2l": (2, False)}
COMMON_TOKENS = 1000


def repeated_row(gen: np.random.Generator, stream: np.ndarray, common: np.ndarray, span: int) -> np.ndarray:
    """One training row (``span`` tokens) in which a span occurs twice."""
    if gen.random() < 0.5:  # real text: ... A gap A continuation
        n, gap = int(gen.integers(8, 65)), int(gen.integers(0, 33))
        i = int(gen.integers(0, len(stream) - span - n))
        a = stream[i : i + n]
        before = stream[i - gap : i] if i >= gap else stream[:0]
        rest = stream[i + n : i + n + span]
        row = np.concatenate([a, before, a, rest])
    else:  # random common tokens, then the same again, then real text
        n = int(gen.integers(16, 65))
        a = gen.choice(common, size=n)
        i = int(gen.integers(0, len(stream) - span))
        row = np.concatenate([a, a, stream[i : i + span]])
    return row[:span]


def dense_row(gen: np.random.Generator, common: np.ndarray, span: int) -> np.ndarray:
    """A row made only of copied spans: A A B B C C ..., each 8-40 common tokens drawn at random.
    Every second copy is predictable only by induction (each span is new, its length varies, so no
    fixed offset works), about half of the row's tokens, against ~40 in a :func:`repeated_row`."""
    parts: list[np.ndarray] = []
    total = 0
    while total < span:
        a = gen.choice(common, size=int(gen.integers(8, 41)), replace=False)
        parts += [a, a]
        total += 2 * len(a)
    return np.concatenate(parts)[:span]


def batch_rows(
    gen: np.random.Generator, stream: np.ndarray, common: np.ndarray, batch: int, span: int, share: float,
    dense: bool = False,
) -> np.ndarray:  # fmt: skip
    rows = []
    for _ in range(batch):
        if dense:
            rows.append(dense_row(gen, common, span))
        elif gen.random() < share:
            rows.append(repeated_row(gen, stream, common, span))
        else:
            i = int(gen.integers(0, len(stream) - span))
            rows.append(stream[i : i + span])
    return np.stack(rows)


def induction_probe(model: torch.nn.Module, common: np.ndarray, bos: int, n: int = 50, reps: int = 8) -> dict:
    """Mean log-prob on the first and the repeated half of random common-token sequences."""
    gen = np.random.default_rng(1234)
    seq = torch.from_numpy(np.stack([gen.choice(common, size=n) for _ in range(reps)]))
    x = torch.cat([torch.full((reps, 1), bos, dtype=torch.int64), seq, seq], dim=1)
    with torch.no_grad():
        lp = torch.log_softmax(model(x)[:, :-1].float(), dim=-1).gather(-1, x[:, 1:, None])[..., 0]
    return {"first": round(float(lp[:, 1:n].mean()), 3), "repeat": round(float(lp[:, n + 1 :].mean()), 3)}


def train(
    name: str, args: argparse.Namespace, stream: np.ndarray, common: np.ndarray, bos: int, vocab: int, windows: torch.Tensor
) -> None:
    n_layers, attn_only = MODELS[name]
    config = model_config(vocab, attn_only, n_layers)
    config["tokenizer_dir"] = str((OUT / "tokenizer").resolve())
    torch.manual_seed(args.seed)
    model = new_native_model(config)
    if args.init_from is not None:  # continue a trained model (its own shape), e.g. the first gelu-2l
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(args.init_from / "model.safetensors")))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.05)
    steps, warmup = args.steps, max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup))))
    gen = np.random.default_rng(args.seed)
    ckpt = args.work / f"{name}{'-continued' if args.init_from is not None else ''}.pt"
    state: dict = {"step": 0, "losses": [], "seconds": 0.0, "probes": []}
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        gen.bit_generator.state = saved["gen"]
        state = saved["state"]
        print(f"{name}: resumed at step {state['step']}", flush=True)
    span = SHAPE["n_ctx"] - 1
    model.train()
    t0 = time.time() - state["seconds"]
    while state["step"] < steps:
        dense = state["step"] < args.synthetic_steps  # the copying phase: only copied spans
        x = torch.from_numpy(batch_rows(gen, stream, common, args.batch, span, args.repeat_share, dense))
        x = torch.cat([torch.full((args.batch, 1), bos, dtype=torch.int64), x], dim=1)
        logits = model(x)[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        state["losses"].append(round(loss.item(), 4))
        state["step"] += 1
        if state["step"] % args.every == 0 or state["step"] == steps:
            model.eval()
            probe = induction_probe(model, common, bos)
            model.train()
            state["seconds"] = time.time() - t0
            state["probes"].append({"step": state["step"], **probe})
            tmp = ckpt.with_suffix(".tmp")
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "gen": gen.bit_generator.state,
                    "state": state,
                },
                tmp,
            )
            tmp.replace(ckpt)
            print(
                f"{name} step {state['step']}/{steps} loss {np.mean(state['losses'][-50:]):.3f} probe {probe} "
                f"{state['seconds']:.0f}s",
                flush=True,
            )
    model.eval()
    held = model_loss(model, windows)
    folder = args.out / name
    config["tokenizer_dir"] = "../tokenizer"
    save_native(model, config, folder)
    report = {
        "steps": steps,
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "repeat_share": args.repeat_share,
        "synthetic_steps": args.synthetic_steps,
        "init_from": None if args.init_from is None else f"{args.init_from.name} (the previous weights)",
        "tokens_seen": steps * args.batch * span,
        "threads": args.threads,
        "train_seconds": round(state["seconds"], 1),
        "final_train_loss": round(float(np.mean(state["losses"][-50:])), 4),
        "held_out_loss": round(held, 4),
        "params": sum(p.numel() for p in model.parameters()),
        "probes": state["probes"],
    }
    (folder / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{name}: held-out {held:.4f} nats", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--repeat-share", type=float, default=0.25)
    ap.add_argument(
        "--synthetic-steps",
        type=int,
        default=0,
        help="first train this many steps on rows of copied random spans only (see dense_row)",
    )
    ap.add_argument("--work", type=Path, default=Path(".cache/train"))
    ap.add_argument("--out", type=Path, default=Path(".cache/train/out"))
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--init-from", type=Path, default=None, help="a model folder to continue training from")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(OUT / "tokenizer"))
    bos, vocab = tokenizer.bos_token_id, len(tokenizer)
    split = split_files()

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    stream = token_stream(encode, split.root, split.train, bos)
    windows = eval_windows(token_stream(encode, split.root, split.held_out, bos), SHAPE["n_ctx"], bos)
    counts = np.bincount(stream, minlength=vocab)
    counts[bos] = 0
    common = np.argsort(-counts, kind="stable")[:COMMON_TOKENS]
    for name in args.models:
        train(name, args, stream, common, bos, vocab, windows)


if __name__ == "__main__":
    main()
