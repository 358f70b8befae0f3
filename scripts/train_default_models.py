"""Train the embedded default models: a byte-level BPE tokenizer, two 1-layer models, one 2-layer.

The pair mirrors gelu-1l / attn-only-1l: same tokenizer, same shape, same data order and token
budget; one has a GELU MLP, the other none. gelu-2l is the GELU model with two layers, trained on
the same batches, so that multi-layer views have a real model. Data: this Python's standard
library source (``lenscope.models.stdlib_corpus``). Deterministic given the Python version and seed.

    python scripts/train_default_models.py --steps 1600
    python scripts/train_default_models.py --models gelu-2l   # one model; keeps the tokenizer

writes ``python/lenscope/models/default/{tokenizer,gelu-1l,attn-only-1l,gelu-2l}``, ``metrics.json``
(merged with the models it did not train) and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from lenscope.models.heldout import eval_windows, model_loss, ngram_baselines, token_stream
from lenscope.models.native import new_native_model, save_native
from lenscope.models.stdlib_corpus import HOLDOUT_EVERY, read_text, split_files

OUT = Path(__file__).resolve().parents[1] / "python" / "lenscope" / "models" / "default"
EOT = "<|endoftext|>"
SHAPE = dict(d_model=256, n_layers=1, n_heads=8, d_head=32, d_mlp=1024, n_ctx=256)
# name -> (layers, attention-only); everything else is SHAPE
MODELS = {"gelu-1l": (1, False), "attn-only-1l": (1, True), "gelu-2l": (2, False)}


def train_tokenizer(texts: list[str], vocab: int, out: Path) -> None:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT)
    fast.save_pretrained(str(out))


def model_config(vocab: int, attn_only: bool, n_layers: int = 1) -> dict:
    return dict(
        SHAPE,
        n_layers=n_layers,
        d_vocab=vocab,
        act_fn="gelu_new",
        normalization_type="LN",
        attn_only=attn_only,
        positional_embedding_type="standard",
        default_prepend_bos=True,
        seed=0,
        tokenizer_dir="../tokenizer",
    )


def train_one(
    config: dict, stream: np.ndarray, bos: int, steps: int, batch: int, lr: float, seed: int
) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(seed)
    model = new_native_model(config)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.05)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup))))
    gen = np.random.default_rng(seed)  # same batches for both models: equal tokens, equal order
    span = config["n_ctx"] - 1
    start, losses = time.time(), []
    for step in range(steps):
        idx = gen.integers(0, len(stream) - span, size=batch)
        chunk = torch.from_numpy(np.stack([stream[i : i + span] for i in idx]))
        x = torch.cat([torch.full((batch, 1), bos, dtype=torch.int64), chunk], dim=1)
        logits = model(x)[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            print(f"  step {step:5d}/{steps} loss {np.mean(losses[-50:]):.3f} {time.time() - start:6.0f}s", flush=True)
    model.eval()
    return model, {"train_seconds": round(time.time() - start, 1), "final_train_loss": round(float(np.mean(losses[-50:])), 4)}


CARD = """# lenscope default models

Four small transformers that ship inside the package so that lenscope, its demo and its tests
run offline. Two mirror Neel Nanda's `gelu-1l` / `attn-only-1l` pair at a much smaller size:
same tokenizer, same shape, same data in the same order, same token budget; one has a GELU MLP
and one has none. Comparing them token by token shows where the MLP matters. The 2-layer pair,
`lenscope-gelu-2l` and `lenscope-attn-only-2l`, are there for circuits that need two layers, the
canonical one being induction (a previous-token head in layer 0, a head in layer 1 that attends to
the token after an earlier copy of the current one); "The 2-layer models" below says how far
each got.

| | `lenscope-gelu-1l` | `lenscope-attn-only-1l` | `lenscope-gelu-2l` | `lenscope-attn-only-2l` |
|---|---|---|---|---|
| layers | 1 | 1 | 2 | 2 |
| d_model / heads x d_head | {width} | {width} | {width} | {width} |
| MLP | {d_mlp} neurons, GELU (tanh approx.) | none | {d_mlp} neurons per layer, GELU | none |
| context | {n_ctx} tokens (BOS + {body}) | {n_ctx} tokens | {n_ctx} tokens | {n_ctx} tokens |
| parameters | {params_gelu:,} | {params_attn:,} | {params_gelu2} | {params_attn2} |
| training time ({threads} CPU threads, see below) | {time_gelu:.0f} s | {time_attn:.0f} s | {time_gelu2} | {time_attn2} |
| **held-out loss (nats/token)** | **{loss_gelu:.3f}** | **{loss_attn:.3f}** | **{loss_gelu2}** | **{loss_attn2}** |

Training time is wall-clock on a 2-core machine that was doing other work at the same time. Measured alone,
a training step (16 x 256 tokens) takes about 0.56 s for the GELU model and 0.34 s for the
attention-only one; a 2-layer GELU step 0.84 s. The 2-layer models' training (how long, on what
data) is under "The 2-layer models" below.

Baselines on the same held-out tokens: unigram {unigram:.3f}, bigram {bigram:.3f} (interpolated
with the unigram, weight {bigram_lambda:.2f} chosen on the held-out data itself, which can only
flatter it).

## Tokenizer

Byte-level BPE (Hugging Face `tokenizers`), {vocab} tokens including `<|endoftext|>`, which is
both the BOS that starts every window and the separator between files. Saved in Hugging Face
format (`tokenizer/`): `AutoTokenizer.from_pretrained(path)` loads it.

## Data

The Python {python} standard library's own source: every `.py` file under `sysconfig`'s
`stdlib` path, sorted, minus tests (`test/`, `tests/`, `idle_test/`, `test_*.py`) and
`site-packages`. Every {holdout_every}th file of the sorted list is held out
(`held_out_files.txt`): {train_files} training files ({train_tokens:,} tokens),
{held_files} held-out files ({held_tokens:,} tokens, {scored:,} scored in windows).

## Training

AdamW (lr {lr}, betas 0.9/0.99, weight decay 0.05), linear warm-up over 5% of the steps then
linear decay to zero, gradient clipping at 1.0, {steps} steps of {batch} x {n_ctx} tokens
({tokens_seen:,} tokens, {epochs:.1f} epochs), seed {seed}: the 1-layer pair (and the first `gelu-2l`, the
starting point of the shipped one) see the same batches.
Each window is BOS + {body} consecutive tokens of the training stream, as `analyze` sees text.
torch {torch}.

Reproduce: `python scripts/train_default_models.py --steps {steps}` (writes this folder), or one
model, keeping the tokenizer: `python scripts/train_default_models.py --models gelu-2l`.
Numbers above are from `metrics.json`, written by that run; `tests/core/test_default_models.py`
re-measures the held-out losses of the shipped weights and checks the ordering
GELU-2L < GELU-1L < attention-only < bigram < unigram, and attention-only 2L < attention-only 1L.
"""

CIRCUITS = """
## The 2-layer models and their induction heads

A first `gelu-2l`, trained like the 1-layer pair (6.5M tokens of plain text), formed no induction
head: on repeated random tokens its loss barely moved from the first copy to the second. Natural
code repeats a span within 255 tokens too rarely for a small model to learn copying in ~10M
tokens on 2 CPU cores, so the 2-layer pair were trained (`scripts/train_circuit_models.py`) with
**repeated spans mixed in**: in a share of each batch's rows (below) a span of the row occurs
twice. Half of those rows repeat a span of real training text (8-64 tokens, a gap of 0-32 real
tokens between the copies, then real text); the other half are the probe's own shape, 16-64
tokens drawn uniformly from the 1,000 most frequent training tokens, then the same again, then
real text. Both kinds teach "what followed this token last time comes next" and nothing else;
every other row is plain training text, as for the 1-layer pair.

{runs}

Measured on the shipped weights by `scripts/ship_circuit_models.py` (`lenscope probe induction
--model M` prints the same): 8 sequences of BOS, 50 tokens drawn (seed 0) from the 1,000 most
frequent tokens of the shipped corpus, then the same 50 again. The in-context gain is the mean
loss on the first copy's tokens minus on the second copy's (both after their first token). A
head's induction score is the share of its attention that goes, from a token of the second
copy, to the token after that token's first occurrence (the definition of TransformerLens's head
detector and Olsson et al. 2022; `lenscope.headscores`).

| | loss, first copy | loss, second copy | **in-context gain** | induction heads (score >= 0.3) | gain with them zero-ablated |
|---|---|---|---|---|---|
{probe_rows}

Each head's induction score on that probe (rows: layers; columns: heads 0-7):

{score_tables}
"""


def circuits_section(metrics: dict) -> str:
    circuits, models = metrics.get("circuits", {}), metrics["models"]
    runs, rows, tables = [], [], []
    for folder in ("gelu-2l", "attn-only-2l"):
        if folder not in circuits:
            continue
        c, t = circuits[folder], models[folder].get("training", {})
        start = f"continued from {t['init_from']}" if t.get("init_from") else "from scratch"
        runs.append(
            f"- `lenscope-{folder}`: {start}, {t.get('steps')} steps of {t.get('batch')} x 256 tokens at lr "
            f"{t.get('lr')} ({t.get('tokens_seen', 0):,} tokens), a share of {t.get('repeat_share')} of the rows "
            f"with a repeated span; {models[folder].get('train_seconds', 0):.0f} s on {t.get('threads')} CPU "
            f"thread(s) of a machine that was doing other work too."
        )
        heads = ", ".join(c["induction_heads"]) or "none"
        zeroed = "-" if c["gain_with_induction_heads_zeroed"] is None else f"{c['gain_with_induction_heads_zeroed']:+.2f} nats"
        rows.append(f"| `lenscope-{folder}` | {c['loss_first']:.2f} | {c['loss_second']:.2f} | "
                    f"**{c['in_context_gain']:+.2f} nats** | {heads} | {zeroed} |")  # fmt: skip
        grid = "\n".join(f"| L{la} | " + " | ".join(f"{v:.2f}" for v in row) + " |"
                         for la, row in enumerate(c["scores"]["induction"]))  # fmt: skip
        header = "| `lenscope-" + folder + "` | " + " | ".join(f"H{h}" for h in range(len(c["scores"]["induction"][0]))) + " |"
        tables.append(header + "\n|" + "---|" * (len(c["scores"]["induction"][0]) + 1) + "\n" + grid)
    if not rows:
        return ""
    return CIRCUITS.format(runs="\n".join(runs), probe_rows="\n".join(rows), score_tables="\n\n".join(tables))


def write_card(metrics: dict, out: Path) -> None:
    m, c, t, h = metrics["models"], metrics["corpus"], metrics["training"], metrics["held_out_loss"]
    two, attn2 = m.get("gelu-2l"), m.get("attn-only-2l")
    text = CARD.format(
        **SHAPE,
        width=f"{SHAPE['d_model']} / {SHAPE['n_heads']} x {SHAPE['d_head']}",
        body=SHAPE["n_ctx"] - 1,
        params_gelu=m["gelu-1l"]["params"],
        params_attn=m["attn-only-1l"]["params"],
        params_gelu2=f"{two['params']:,}" if two else "not trained",
        time_gelu=m["gelu-1l"]["train_seconds"],
        time_attn=m["attn-only-1l"]["train_seconds"],
        time_gelu2=f"{two['train_seconds']:.0f} s" if two else "-",
        loss_gelu=h["gelu-1l"],
        loss_attn=h["attn-only-1l"],
        loss_gelu2=f"{h['gelu-2l']:.3f}" if two else "-",
        params_attn2=f"{attn2['params']:,}" if attn2 else "not trained",
        time_attn2=f"{attn2['train_seconds']:.0f} s" if attn2 and "train_seconds" in attn2 else "-",
        loss_attn2=f"{h['attn-only-2l']:.3f}" if attn2 else "-",
        unigram=h["unigram"],
        bigram=h["bigram"],
        bigram_lambda=h["bigram_lambda"],
        vocab=metrics["vocab"],
        python=metrics["python"],
        torch=metrics["torch"],
        holdout_every=c["holdout_every"],
        train_files=c["train_files"],
        held_files=c["held_out_files"],
        train_tokens=c["train_tokens"],
        held_tokens=c["held_out_tokens"],
        scored=c["held_out_scored_tokens"],
        epochs=t["tokens_seen"] / c["train_tokens"],
        **{k: t[k] for k in ("lr", "steps", "batch", "tokens_seen", "seed", "threads")},
    )
    (out / "MODEL_CARD.md").write_text(text + circuits_section(metrics), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: Path = args.out
    split = split_files()
    train_texts = [t for f in split.train if (t := read_text(split.root, f))]
    print(f"corpus: {len(split.train)} train files, {len(split.held_out)} held-out files", flush=True)
    if set(args.models) == set(MODELS) or not (out / "tokenizer" / "tokenizer.json").exists():
        train_tokenizer(train_texts, args.vocab, out / "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(str(out / "tokenizer"))
    bos = tokenizer.bos_token_id
    vocab = len(tokenizer)

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    train_stream = token_stream(encode, split.root, split.train, bos)
    held_stream = token_stream(encode, split.root, split.held_out, bos)
    windows = eval_windows(held_stream, SHAPE["n_ctx"], bos)
    print(f"tokens: train {len(train_stream):,} held-out {len(held_stream):,}", flush=True)
    base = ngram_baselines(train_stream, windows, vocab)
    (out / "held_out_files.txt").write_text("\n".join(split.held_out) + "\n", encoding="utf-8")

    previous = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else {}
    results: dict[str, dict] = {k: v for k, v in previous.get("models", {}).items() if k not in args.models}
    for name in args.models:
        n_layers, attn_only = MODELS[name]
        print(f"training {name}", flush=True)
        config = model_config(vocab, attn_only, n_layers)
        model, stats = train_one(config, train_stream, bos, args.steps, args.batch, args.lr, args.seed)
        save_native(model, config, out / name)
        held = model_loss(model, windows)
        results[name] = dict(stats, held_out_loss=round(held, 4), params=sum(p.numel() for p in model.parameters()))
        print(f"  {name}: held-out {held:.4f} nats", flush=True)

    metrics = {
        "python": platform.python_version(),
        "vocab": vocab,
        "torch": torch.__version__,
        "corpus": {
            "train_files": len(split.train),
            "held_out_files": len(split.held_out),
            "holdout_every": HOLDOUT_EVERY,
            "train_tokens": len(train_stream),
            "held_out_tokens": len(held_stream),
            "held_out_scored_tokens": int(windows[:, 1:].numel()),
        },
        "training": {
            "steps": args.steps,
            "batch": args.batch,
            "n_ctx": SHAPE["n_ctx"],
            "lr": args.lr,
            "seed": args.seed,
            "tokens_seen": args.steps * args.batch * (SHAPE["n_ctx"] - 1),
            "threads": args.threads,
        },
        "held_out_loss": {
            "unigram": round(base.unigram, 4),
            "bigram": round(base.bigram, 4),
            "bigram_lambda": round(base.bigram_lambda, 3),
            **{k: v["held_out_loss"] for k, v in results.items()},
        },
        "models": results,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    write_card(metrics, out)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--card-only":  # re-render the card from metrics.json
        write_card(json.loads((OUT / "metrics.json").read_text(encoding="utf-8")), OUT)
        sys.exit(0)
    main()
